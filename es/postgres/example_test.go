package postgres_test

import (
	"context"
	"fmt"
	"log"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
)

// A store on a pool: migrate once, append, read back. (The example needs a
// server, so it is compiled but not run by go test.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	store, err := postgres.New(ctx, pool, postgres.Config{Schema: "shop"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	res, err := es.Append(ctx, store, "cart-42", es.NoStream, es.EventData{
		ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: []byte(`{"user":"u-7"}`),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("cart-42 is at version", res.Version)

	for e, err := range store.ReadStream(ctx, "cart-42", es.StreamQuery{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Version, e.Type, string(e.Data))
	}
}

// Events and an outbox row commit together when the append runs in the
// caller's transaction. The append must be the transaction's first write.
func ExampleStore_AppendTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.New(ctx, pool, postgres.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := store.AppendTx(ctx, tx, es.StreamAppend{
			StreamID: "order-9", Expected: es.NoStream,
			Events: []es.EventData{{ID: es.NewID(), Type: "OrderPlaced", SchemaVersion: 1, Data: []byte(`{"total":24900}`)}},
		})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO outbox (topic, body) VALUES ('orders', '{"order":"order-9"}')`)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}

// A reader following the global log: read from the last position handled,
// then wait for a notification or a tick, whichever comes first.
func ExampleStore_Notify() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.New(ctx, pool, postgres.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	signals := store.Notify(ctx)
	var last int64
	for {
		for e, err := range store.ReadAll(ctx, es.AllQuery{After: last}) {
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(e.Position, e.StreamID, e.Type)
			last = e.Position
		}
		select {
		case <-signals:
		case <-ctx.Done():
			return
		}
	}
}

// A read model of concerts kept by a projection: asynchronously, by a
// subscription that holds a lease so one process at a time runs it, and
// rebuilt from scratch when its code changes.
func ExampleProjection() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.New(ctx, pool, postgres.Config{Schema: "shop"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	concerts := postgres.Projection{
		Name:   "available-concerts",
		Tables: []string{"available_concerts"},
		Setup: func(ctx context.Context, tx pgx.Tx, t postgres.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("available_concerts")+` (
				concert_id text PRIMARY KEY,
				title      text NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx pgx.Tx, t postgres.Tables, e es.Event) error {
			switch e.Type {
			case "ConcertScheduled":
				_, err := tx.Exec(ctx, `INSERT INTO `+t.Name("available_concerts")+` (concert_id, title)
					VALUES ($1, $2::jsonb->>'title') ON CONFLICT DO NOTHING`, e.StreamID, string(e.Data))
				return err
			case "ConcertCancelled":
				_, err := tx.Exec(ctx, `DELETE FROM `+t.Name("available_concerts")+` WHERE concert_id = $1`, e.StreamID)
				return err
			}
			return nil // not an event this read model cares about
		},
	}

	// Asynchronous: one transaction per batch holds the changes and the
	// checkpoint. (Config{Inline: ...} on New would apply it inside every
	// append instead.)
	sub := es.NewSubscription("available-concerts", store, store.Consumer(concerts), es.SubscriptionConfig{Categories: []string{"concert"}, Locker: store.Locker()})
	go func() {
		if err := sub.Run(ctx); err != nil {
			log.Print(err)
		}
	}()

	// After changing Apply: rebuild into fresh tables, then swap them in.
	if err := store.Rebuild(ctx, concerts); err != nil {
		log.Fatal(err)
	}
}

// The outbox: an order's event and its integration message commit in one
// transaction; a relay delivers the message at least once, in order per
// key; the consumer records it in the inbox in the transaction of its
// effect, so the effect happens exactly once.
func ExampleStore_AppendEnqueue() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := postgres.New(ctx, pool, postgres.Config{Schema: "shop"})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		log.Fatal(err)
	}

	placed := es.Message{ID: es.NewID(), Key: "order-9", Type: "orders.OrderPlaced", SchemaVersion: 1,
		Data: []byte(`{"order_id":"order-9"}`)}
	if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{placed}}, es.StreamAppend{
		StreamID: "order-9", Expected: es.NoStream,
		Events: []es.EventData{{ID: es.NewID(), Type: "OrderPlaced", SchemaVersion: 1, Data: []byte(`{}`)}},
	}); err != nil {
		log.Fatal(err)
	}

	// The consumer: the inbox record and the effect commit together.
	invoicing := es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			first, err := store.InboxTx(ctx, tx, "invoicing", m.ID)
			if err != nil || !first {
				return err // a redelivery: already done
			}
			_, err = tx.Exec(ctx, `INSERT INTO invoices (order_id) VALUES ($1::jsonb->>'order_id')`, string(m.Data))
			return err
		})
	})
	// Any number of processes may run the relay: the leases share the work.
	relay := es.NewRelay(store, invoicing, es.RelayConfig{Workers: 4, Locker: store.Locker()})
	if err := relay.Run(ctx); err != nil { // until ctx ends
		log.Fatal(err)
	}
}
