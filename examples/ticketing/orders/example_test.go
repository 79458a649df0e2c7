package orders_test

import (
	"fmt"
	"time"

	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/orders"
)

// The TicketOrder decider: a declined payment cancels an order that held
// seats, and the cancellation says which seats to release.
func ExampleDecider() {
	d := orders.Decider()
	s := d.Initial()
	for _, msg := range []any{
		orders.PlaceOrder{OrderID: "o1", UserID: "u1", ConcertID: "c1", Lines: lines, Delivery: delivery},
		orders.SeatsHeld{OrderID: "o1", ReservationID: orders.ReservationID("o1", 0), ExpiresAt: time.Date(2026, 5, 1, 20, 15, 0, 0, time.UTC)},
		finance.PaymentFailed{PaymentID: orders.PaymentID("o1"), OrderID: "o1", Reason: "card declined"},
	} {
		events, err := d.Decide(s, msg)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range events {
			s = d.Evolve(s, e)
			if c, ok := e.(orders.OrderCancelled); ok {
				fmt.Println(c.Reason, "; release:", c.Release == orders.ReservationID("o1", 0))
			}
		}
	}
	fmt.Println(s.Status, s.Total)
	// Output:
	// payment failed: card declined ; release: true
	// cancelled 947.50 PLN
}
