package es_test

import (
	"errors"

	"esgo.dev/es"
)

// A shopping cart for concert tickets: the domain of the examples and tests.

type CartEvent interface{ isCartEvent() }

type ItemAdded struct {
	TicketType string `json:"ticket_type"`
	Quantity   int    `json:"quantity"`
}

type CartConfirmed struct{}

func (ItemAdded) isCartEvent()     {}
func (CartConfirmed) isCartEvent() {}

type AddItem struct {
	TicketType string
	Quantity   int
}

type Confirm struct{}

type Cart struct {
	Items     map[string]int
	Confirmed bool
}

var (
	ErrCartConfirmed   = errors.New("cart already confirmed")
	ErrInvalidQuantity = errors.New("quantity must be between 1 and 10")
	ErrEmptyCart       = errors.New("cart is empty")
)

var cartDecider = es.Decider[Cart, any, CartEvent]{
	Initial: func() Cart { return Cart{Items: map[string]int{}} },
	Decide: func(c Cart, cmd any) ([]CartEvent, error) {
		if c.Confirmed {
			return nil, ErrCartConfirmed
		}
		switch cmd := cmd.(type) {
		case AddItem:
			if cmd.Quantity < 1 || cmd.Quantity > 10 {
				return nil, ErrInvalidQuantity
			}
			//lint:ignore S1016 an event is not a converted command: their fields must stay free to differ
			return []CartEvent{ItemAdded{TicketType: cmd.TicketType, Quantity: cmd.Quantity}}, nil
		case Confirm:
			if len(c.Items) == 0 {
				return nil, ErrEmptyCart
			}
			return []CartEvent{CartConfirmed{}}, nil
		}
		return nil, errors.New("unknown command")
	},
	Evolve: func(c Cart, e CartEvent) Cart {
		switch e := e.(type) {
		case ItemAdded:
			items := make(map[string]int, len(c.Items)+1)
			for k, v := range c.Items {
				items[k] = v
			}
			items[e.TicketType] += e.Quantity
			c.Items = items
		case CartConfirmed:
			c.Confirmed = true
		}
		return c
	},
}

func cartRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[ItemAdded](reg, "ItemAdded")
	es.MustRegister[CartConfirmed](reg, "CartConfirmed")
	return reg
}
