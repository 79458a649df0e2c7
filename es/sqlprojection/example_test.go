package sqlprojection_test

import (
	"context"
	"encoding/json"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlprojection"
)

// seatsSold is a portable read model of the seats sold per concert. Its
// SQL is the subset both stores share: CREATE TABLE IF NOT EXISTS, BIGINT,
// an upsert with $1-style placeholders.
func seatsSold() sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "seats-sold",
		Tables: []string{"seats_sold"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("seats_sold")+` (
				concert TEXT PRIMARY KEY, seats BIGINT NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			if e.Type != "SeatsReserved" {
				return nil // not an event this read model cares about
			}
			var d struct {
				Concert string `json:"concert"`
				Seats   int64  `json:"seats"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+t.Name("seats_sold")+` AS s (concert, seats) VALUES ($1, $2)
				ON CONFLICT (concert) DO UPDATE SET seats = s.seats + excluded.seats`, d.Concert, d.Seats)
			return err
		},
	}
}

// A portable projection, kept inline by a SQLite store. On PostgreSQL the
// same value runs through postgres.FromPortable:
// postgres.Config{Inline: []postgres.Projection{postgres.FromPortable(seatsSold())}}, or
// store.Consumer(postgres.FromPortable(seatsSold())) for a subscription.
func Example() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{sqlite.FromPortable(seatsSold())}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	for _, seats := range []int{2, 3} {
		_, err := es.Append(ctx, store, "reservation-"+es.NewID(), es.NoStream, es.EventData{
			ID: es.NewID(), Type: "SeatsReserved", SchemaVersion: 1,
			Data: fmt.Appendf(nil, `{"concert":"Warsaw","seats":%d}`, seats),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	var seats int64
	if err := store.DB().QueryRowContext(ctx, `SELECT seats FROM seats_sold WHERE concert = $1`, "Warsaw").Scan(&seats); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("Warsaw:", seats, "seats sold")
	// Output: Warsaw: 5 seats sold
}

// Validate refuses what one of the stores could not run, here a table
// name that PostgreSQL would keep in upper case.
func ExampleProjection_Validate() {
	p := seatsSold()
	p.Tables = []string{"SeatsSold"}
	fmt.Println(p.Validate())
	// Output: sqlprojection: projection seats-sold: table name "SeatsSold" is not a portable identifier (a-z, 0-9 and _, starting with a letter, at most 63 bytes)
}
