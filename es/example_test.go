package es_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// This example registers events, handles commands with a decider and reads
// the stream back. The cart decider is in cart_test.go.
func Example() {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[ItemAdded](reg, "ItemAdded")
	es.MustRegister[CartConfirmed](reg, "CartConfirmed")

	store := memory.New(memory.Config{})
	carts := es.NewCommandHandler(store, reg, cartDecider, es.HandlerConfig{})

	carts.Handle(ctx, "", "cart-1", AddItem{TicketType: "standing", Quantity: 2})
	res, _ := carts.Handle(ctx, "", "cart-1", Confirm{})
	fmt.Println("confirmed:", res.State.Confirmed, "at version", res.Version)

	_, err := carts.Handle(ctx, "", "cart-1", AddItem{TicketType: "vip", Quantity: 1})
	fmt.Println("then:", err, errors.Is(err, ErrCartConfirmed))

	for e, err := range store.ReadStream(ctx, "cart-1", es.StreamQuery{}) {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
	// Output:
	// confirmed: true at version 2
	// then: cart already confirmed true
	// 1 ItemAdded {"ticket_type":"standing","quantity":2}
	// 2 CartConfirmed {}
}

// A command handled twice with the same ID takes effect once: a client
// that retries after a timeout cannot add the tickets twice.
func ExampleCommandHandler_Handle_repeated() {
	ctx := context.Background()
	carts := es.NewCommandHandler(memory.New(memory.Config{}), cartRegistry(), cartDecider, es.HandlerConfig{})
	id := es.NewID() // chosen by the client and sent with every retry
	for range 3 {
		res, _ := carts.Handle(ctx, id, "cart-1", AddItem{TicketType: "vip", Quantity: 2})
		fmt.Println("repeated:", res.Repeated, "vip tickets:", res.State.Items["vip"])
	}
	// Output:
	// repeated: false vip tickets: 2
	// repeated: true vip tickets: 2
	// repeated: true vip tickets: 2
}

// Two streams change together or not at all: here the cart is confirmed
// only if the ticket pool has not moved since it was read.
func ExampleStore_multiStream() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := cartRegistry()
	added, _ := reg.Encode(ItemAdded{TicketType: "vip", Quantity: 1})
	es.Append(ctx, store, "pool-1", es.NoStream, added)

	confirmed, _ := reg.Encode(CartConfirmed{})
	_, err := store.Append(ctx,
		es.StreamAppend{StreamID: "pool-1", Expected: es.Exact(0)}, // stale: the pool is at version 1
		es.StreamAppend{StreamID: "cart-1", Expected: es.NoStream, Events: []es.EventData{confirmed}},
	)
	fmt.Println(err)
	fmt.Println("conflict:", errors.Is(err, es.ErrConcurrency))
	evs, _ := es.Collect(store.ReadStream(ctx, "cart-1", es.StreamQuery{}))
	fmt.Println("cart events:", len(evs))
	// Output:
	// es: wrong expected version for stream "pool-1": expected no stream, stream is at version 1
	// conflict: true
	// cart events: 0
}

// Upcasters bring old stored shapes up to date as they are read; stored
// events are never rewritten. Version 1 of PriceSet stored a decimal
// string, version 2 minor units, version 3 minor units and a currency.
func ExampleUpcastFrom() {
	reg := es.NewRegistry()
	es.MustRegister[PriceSet](reg, "PriceSet",
		es.UpcastFrom(1, priceV1toV2),
		es.UpcastFrom(2, priceV2toV3),
	)
	stored := es.Event{Type: "PriceSet", SchemaVersion: 1, Data: json.RawMessage(`{"price":"12.50"}`)}
	v, err := reg.Decode(stored)
	fmt.Printf("%+v %v\n", v, err)
	// Output:
	// {Price:{Amount:1250 Currency:PLN}} <nil>
}

func ExampleRenamedFrom() {
	type SeatsReserved struct {
		Seats int `json:"seats"`
	}
	reg := es.NewRegistry()
	es.MustRegister[SeatsReserved](reg, "SeatsReserved", es.RenamedFrom("TicketsHeld"))
	v, _ := reg.Decode(es.Event{Type: "TicketsHeld", SchemaVersion: 1, Data: json.RawMessage(`{"seats":4}`)})
	fmt.Printf("%T %+v\n", v, v)
	// Output:
	// es_test.SeatsReserved {Seats:4}
}

// A handler with snapshots folds only the events after the latest one. The
// decider opts in with a snapshot name and its state's version; raising
// the version after a change to the state makes the handler ignore, and
// rebuild, the older snapshots.
func ExampleHandlerConfig_snapshots() {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[ItemAdded](reg, "ItemAdded")
	es.MustRegister[CartConfirmed](reg, "CartConfirmed")
	store := memory.New(memory.Config{})

	decider := cartDecider
	decider.SnapshotName, decider.SnapshotVersion = "cart", 1
	carts := es.NewCommandHandler(store, reg, decider, es.HandlerConfig{SnapshotEvery: 3})
	first := es.NewID()
	carts.Handle(ctx, first, "cart-7", AddItem{TicketType: "standing", Quantity: 1})
	for range 4 {
		carts.Handle(ctx, "", "cart-7", AddItem{TicketType: "standing", Quantity: 1})
	}
	state, version, _ := carts.Load(ctx, "cart-7")
	fmt.Println("standing:", state.Items["standing"], "at version", version)

	// The first command's events lie before the snapshot; a repeat still
	// finds them.
	res, _ := carts.Handle(ctx, first, "cart-7", AddItem{TicketType: "standing", Quantity: 1})
	fmt.Println("repeated:", res.Repeated, "version", res.Version)
	// Output:
	// standing: 5 at version 5
	// repeated: true version 1
}
