package memory_test

import (
	"context"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

func Example() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	_, err := es.Append(ctx, store, "cart-1", es.NoStream,
		es.EventData{ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: []byte(`{"user":"u-1"}`)})
	fmt.Println(err)

	_, err = es.Append(ctx, store, "cart-1", es.NoStream,
		es.EventData{ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: []byte(`{"user":"u-2"}`)})
	fmt.Println(err)

	for e, err := range store.ReadAll(ctx, es.AllQuery{Categories: []string{"cart"}}) {
		if err != nil {
			break
		}
		fmt.Println(e.Position, e.StreamID, e.Version, e.Type, string(e.Data))
	}
	// Output:
	// <nil>
	// es: wrong expected version for stream "cart-1": expected no stream, stream is at version 1
	// 1 cart-1 1 CartOpened {"user":"u-1"}
}
