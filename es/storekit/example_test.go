package storekit_test

import (
	"context"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// A store validates a request before it writes anything, so that every
// store refuses the same requests with the same sentinel.
func ExampleCheckAppend() {
	err := storekit.CheckAppend([]es.StreamAppend{{
		StreamID: "cart-1", Expected: es.NoStream,
		Events: []es.EventData{{ID: "not-a-uuid", Type: "CartOpened", SchemaVersion: 1, Data: []byte(`{}`)}},
	}})
	fmt.Println(errors.Is(err, es.ErrInvalidAppend))
	// Output: true
}

// An append whose event IDs are all stored, as the same events, is a
// repeat: the store returns the first append's results and writes nothing.
func ExampleMatchStored() {
	e := es.EventData{ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: []byte(`{"user":"u-1"}`)}
	stored := map[string]es.Event{e.ID: {ID: e.ID, StreamID: "cart-1", Version: 1, Position: 7,
		Type: e.Type, SchemaVersion: 1, Data: []byte(`{ "user": "u-1" }`)}}
	res, replay, err := storekit.MatchStored([]es.StreamAppend{{StreamID: "cart-1", Expected: es.NoStream, Events: []es.EventData{e}}},
		stored, func(string) int64 { return 1 })
	fmt.Println(replay, err, res[0].Version, res[0].Position, res[0].Repeated)
	// Output: true <nil> 1 7 true
}

// A Broadcaster hands out Notify channels and wakes them all after an
// append.
func ExampleBroadcaster() {
	b := storekit.NewBroadcaster(nil)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := b.Notify(ctx)
	b.Broadcast() // after a commit
	<-ch
	fmt.Println("woken")
	// Output: woken
}
