package explorer_test

import (
	"context"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/explorer"
)

// The explorer's read model, kept inline by a SQLite store here (the
// ticketing app keeps it by a subscription): two appends of one purchase
// share a correlation ID, and the read model lists the streams and follows
// the purchase across them.
func Example() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{sqlite.FromPortable(explorer.Projection())}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	purchase := es.NewID()
	for _, stream := range []string{"cart-ala", "order-42"} {
		if _, err := es.Append(ctx, store, stream, es.NoStream, es.EventData{ID: es.NewID(), Type: "Happened", SchemaVersion: 1,
			Data: []byte(`{}`), Metadata: es.Metadata{CorrelationID: purchase}}); err != nil {
			fmt.Println(err)
			return
		}
	}
	streams, err := explorer.Streams(ctx, store.DB(), "", "", 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range streams {
		fmt.Println(s.Category, s.ID, "version", s.Version)
	}
	links, err := explorer.Correlated(ctx, store.DB(), purchase, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("the purchase touched", len(links), "events")
	// Output:
	// cart cart-ala version 1
	// order order-42 version 1
	// the purchase touched 2 events
}
