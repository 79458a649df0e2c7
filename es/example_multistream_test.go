package es_test

import (
	"context"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// A checkout confirms a cart and takes its seats from a ticket pool: two
// streams with their own deciders (the cart's is in cart_test.go, the
// pool's in multistream_test.go), decided together and appended at once,
// or not at all.
func ExampleMultiStreamHandler() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := checkoutRegistry()
	carts := es.NewCommandHandler(store, reg, cartDecider, es.HandlerConfig{})
	pools := es.NewCommandHandler(store, reg, poolDecider, es.HandlerConfig{})
	pools.Handle(ctx, "", "pool-1", Stock{Seats: 4})
	carts.Handle(ctx, "", "cart-1", AddItem{TicketType: "vip", Quantity: 3})
	carts.Handle(ctx, "", "cart-2", AddItem{TicketType: "vip", Quantity: 2})

	checkout := func(cartID string) func(context.Context, *es.Decision) error {
		return func(ctx context.Context, d *es.Decision) error {
			cart, err := es.Load(ctx, d, cartDecider, cartID)
			if err != nil {
				return err
			}
			if _, err := es.DecideOn(ctx, d, cartDecider, cartID, any(Confirm{})); err != nil {
				return err
			}
			_, err = es.DecideOn(ctx, d, poolDecider, "pool-1", any(Take{Seats: cart.Items["vip"]}))
			return err
		}
	}
	h := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{})
	id := es.NewID() // chosen by the client and sent with every retry
	for range 2 {
		res, err := h.Handle(ctx, id, checkout("cart-1"))
		fmt.Println("repeated:", res.Repeated, "error:", err)
		for _, s := range res.Streams {
			fmt.Println(" ", s.StreamID, "at version", s.Version, s.Events)
		}
	}
	_, err := h.Handle(ctx, es.NewID(), checkout("cart-2"))
	fmt.Println("cart-2:", err)
	_, version, _ := carts.Load(ctx, "cart-2")
	fmt.Println("cart-2 at version", version)
	// Output:
	// repeated: false error: <nil>
	//   cart-1 at version 2 [{}]
	//   pool-1 at version 2 [{3 1}]
	// repeated: true error: <nil>
	//   cart-1 at version 2 [{}]
	//   pool-1 at version 2 [{3 1}]
	// cart-2: sold out
	// cart-2 at version 1
}
