package sqlite_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// Example opens a store in a file, appends to a stream, reads it back and
// shows what a stale expectation gets.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "es-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	store, err := sqlite.Open(ctx, filepath.Join(dir, "events.db"), sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	_, err = es.Append(ctx, store, "cart-42", es.NoStream,
		es.EventData{ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: json.RawMessage(`{"user":"u-1"}`)},
		es.EventData{ID: es.NewID(), Type: "ItemAdded", SchemaVersion: 1, Data: json.RawMessage(`{"sku":"A-1","qty":2}`)},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for e, err := range store.ReadStream(ctx, "cart-42", es.StreamQuery{}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}

	// Another writer that still thinks the cart is new loses.
	_, err = es.Append(ctx, store, "cart-42", es.NoStream,
		es.EventData{ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: json.RawMessage(`{"user":"u-2"}`)})
	fmt.Println(errors.Is(err, es.ErrConcurrency))
	// Output:
	// 1 CartOpened {"user":"u-1"}
	// 2 ItemAdded {"sku":"A-1","qty":2}
	// true
}

// ExampleOpenMemory reads events of all streams of one category, in the
// order they were appended, from a store held in memory.
func ExampleOpenMemory() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	for _, stream := range []string{"order-1", "user-7", "order-2"} {
		e := es.EventData{ID: es.NewID(), Type: "Created", SchemaVersion: 1, Data: json.RawMessage(`{}`)}
		if _, err := es.Append(ctx, store, stream, es.NoStream, e); err != nil {
			fmt.Println(err)
			return
		}
	}
	for e, err := range store.ReadAll(ctx, es.AllQuery{Categories: []string{"order"}}) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(e.Position, e.StreamID, e.Type)
	}
	// Output:
	// 1 order-1 Created
	// 3 order-2 Created
}
