// Command quickstart is the README's quick start as a program: it registers
// events, writes a decider, handles commands and reads the stream back,
// on an in-memory store.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// The events of a shopping cart. E is the interface all of them implement.
type (
	CartEvent    interface{ isCartEvent() }
	TicketsAdded struct {
		Concert  string
		Quantity int
	}
	CartConfirmed struct{}
)

func (TicketsAdded) isCartEvent()  {}
func (CartConfirmed) isCartEvent() {}

// The commands.
type (
	AddTickets struct {
		Concert  string
		Quantity int
	}
	Confirm struct{}
)

// The state the decider needs: only what its rules look at.
type Cart struct {
	Tickets   int
	Confirmed bool
}

var ErrConfirmed = errors.New("cart is already confirmed")

var cart = es.Decider[Cart, any, CartEvent]{
	Initial: func() Cart { return Cart{} },
	Decide: func(c Cart, cmd any) ([]CartEvent, error) {
		if c.Confirmed {
			return nil, ErrConfirmed
		}
		switch cmd := cmd.(type) {
		case AddTickets:
			//lint:ignore S1016 an event is not a converted command: their fields must stay free to differ
			return []CartEvent{TicketsAdded{cmd.Concert, cmd.Quantity}}, nil
		case Confirm:
			return []CartEvent{CartConfirmed{}}, nil
		}
		return nil, fmt.Errorf("unknown command %T", cmd)
	},
	Evolve: func(c Cart, e CartEvent) Cart {
		switch e := e.(type) {
		case TicketsAdded:
			c.Tickets += e.Quantity
		case CartConfirmed:
			c.Confirmed = true
		}
		return c
	},
}

func main() {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[TicketsAdded](reg, "TicketsAdded")
	es.MustRegister[CartConfirmed](reg, "CartConfirmed")

	store := memory.New(memory.Config{})
	carts := es.NewCommandHandler(store, reg, cart, es.HandlerConfig{})

	for _, cmd := range []any{AddTickets{"warsaw-2026", 2}, Confirm{}, AddTickets{"warsaw-2026", 1}} {
		res, err := carts.Handle(ctx, "", "cart-1", cmd)
		fmt.Printf("%-40T -> version %d, %d tickets, error: %v\n", cmd, res.Version, res.State.Tickets, err)
	}
	for e, err := range store.ReadStream(ctx, "cart-1", es.StreamQuery{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
}
