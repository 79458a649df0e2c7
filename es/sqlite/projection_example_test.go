package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// seatsSold is a read model of seats sold per concert: the projection
// behind the examples.
func seatsSold(reg *es.Registry) sqlite.Projection {
	return sqlite.Projection{
		Name:   "seats-sold",
		Tables: []string{"seats_sold"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("seats_sold")+` (
				concert TEXT PRIMARY KEY, seats INTEGER NOT NULL) STRICT`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			v, err := reg.Decode(e)
			if err != nil {
				return err
			}
			sold, ok := v.(SeatsReserved)
			if !ok {
				return nil // not an event this read model cares about
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO `+t.Name("seats_sold")+` (concert, seats) VALUES (?, ?)
				ON CONFLICT (concert) DO UPDATE SET seats = seats + excluded.seats`, sold.Concert, sold.Seats)
			return err
		},
	}
}

// SeatsReserved is the examples' event.
type SeatsReserved struct {
	Concert string `json:"concert"`
	Seats   int    `json:"seats"`
}

func reserve(ctx context.Context, store es.Store, reg *es.Registry, concert string, seats int) error {
	e, err := reg.Encode(SeatsReserved{Concert: concert, Seats: seats})
	if err != nil {
		return err
	}
	_, err = es.Append(ctx, store, "reservation-"+es.NewID(), es.NoStream, e)
	return err
}

func printSeats(ctx context.Context, db *sql.DB) {
	var concert string
	var seats int
	if err := db.QueryRowContext(ctx, `SELECT concert, seats FROM seats_sold`).Scan(&concert, &seats); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(concert, seats)
}

// ExampleConfig_inline keeps a read model in the append's transaction: it is
// up to date when Append returns.
func ExampleConfig_inline() {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[SeatsReserved](reg, "SeatsReserved")
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{seatsSold(reg)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	for _, seats := range []int{2, 3} {
		if err := reserve(ctx, store, reg, "warsaw-2026", seats); err != nil {
			fmt.Println(err)
			return
		}
		printSeats(ctx, store.DB())
	}
	// Output:
	// warsaw-2026 2
	// warsaw-2026 5
}

// ExampleStore_Consumer feeds the same projection from a subscription:
// the read model and its checkpoint commit together, so a crash neither
// loses nor doubles an event. Here the consumer is driven by hand.
func ExampleStore_Consumer() {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[SeatsReserved](reg, "SeatsReserved")
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	for _, seats := range []int{2, 3, 4} {
		if err := reserve(ctx, store, reg, "warsaw-2026", seats); err != nil {
			fmt.Println(err)
			return
		}
	}

	// In an application: es.NewSubscription("seats-sold", store, consumer,
	// es.SubscriptionConfig{Locker: store.Locker()}).Run(ctx).
	consumer := store.Consumer(seatsSold(reg))
	events, err := es.Collect(store.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The same events twice: the second time they are at or below the
	// checkpoint and skipped.
	for range 2 {
		if err := consumer.Handle(ctx, events); err != nil {
			fmt.Println(err)
			return
		}
	}
	checkpoint, _ := consumer.Checkpoint(ctx)
	fmt.Println("checkpoint", checkpoint)
	printSeats(ctx, store.DB())
	// Output:
	// checkpoint 3
	// warsaw-2026 9
}
