package tickets_test

import (
	"fmt"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/tickets"
)

// The orders process asks for a paid order's tickets with a message keyed
// by the order ID; the buyer's delivery choice travels with it.
func ExampleIssueTickets() {
	reg := es.NewRegistry()
	if err := tickets.RegisterMessages(reg); err != nil {
		panic(err)
	}
	m, err := es.NewMessage(reg, "order-1", tickets.IssueTickets{
		OrderID: "order-1", UserID: "ola", ConcertID: "warsaw",
		Seats:    map[string]int{"Standing": 2},
		Delivery: tickets.Delivery{Method: tickets.ByEmail, Email: "ola@example.com"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Type, m.Key)
	// Output: tickets.IssueTickets order-1
}
