package courier_test

import (
	"context"
	"fmt"

	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/courier"
)

// The fake courier takes a parcel, reports it in transit, then
// delivered; told to, it loses the next one.
func ExampleStartFake() {
	srv, err := courier.StartFake("127.0.0.1:0", courier.FakeConfig{DeliverAfter: 2})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	c := courier.NewClient(srv.URL(), nil)
	ctx := context.Background()
	to := tickets.PostalAddress{Name: "Ola Nowak", Street: "Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}
	n, err := c.Ship(ctx, tickets.Shipment{Key: "order-1/ticket-1", TicketID: "ticket-1", To: to})
	if err != nil {
		panic(err)
	}
	for range 2 {
		tr, _ := c.Track(ctx, n)
		fmt.Println(tr.Number, tr.State)
	}
	srv.LoseNext(1)
	lost, _ := c.Ship(ctx, tickets.Shipment{Key: "order-2/ticket-1", TicketID: "ticket-2", To: to})
	tr, _ := c.Track(ctx, lost)
	fmt.Println(tr.Number, tr.State)
	// Output:
	// FC000001 in_transit
	// FC000001 delivered
	// FC000002 lost
}
