package carts_test

import (
	"fmt"

	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/money"
)

// Adding the same ticket twice grows the line; the cart's total is exact
// in minor units.
func ExampleDecider() {
	d := carts.Decider()
	price := money.Money{Amount: 19999, Currency: "PLN"}
	state := d.Initial()
	for range 2 {
		events, err := d.Decide(state, carts.AddItem{UserID: "u1", ConcertID: "c1", ConcertName: "Summer Night",
			TicketType: "VIP", Quantity: 1, UnitPrice: price})
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, e := range events {
			state = d.Evolve(state, e)
		}
	}
	total, _ := state.Total()
	fmt.Println(len(state.Lines), state.Lines[0].Quantity, total)
	// Output: 1 2 399.98 PLN
}
