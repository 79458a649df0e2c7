package tickets_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/stdlib"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/tickets"
)

// TestReadModelsArePortable projects the story's events on SQLite and on
// PostgreSQL with the same projections, and asks every read model's
// queries the same questions on both.
func TestReadModelsArePortable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reg := registry(t)
	lite, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg := pgtest.NewStore(t, postgres.Config{})
	for _, g := range story() {
		given := g.(estest.Given)
		var data []es.EventData
		for _, e := range given.Events {
			d, err := reg.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			data = append(data, d)
		}
		if _, err := lite.Append(ctx, es.StreamAppend{StreamID: given.StreamID, Expected: es.AnyVersion, Events: data}); err != nil {
			t.Fatal(err)
		}
	}
	events, err := es.Collect(lite.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []sqlprojection.Projection{
		tickets.UserTicketsProjection(reg), tickets.TicketDetailsProjection(reg), tickets.ConcertTicketSummaryProjection(reg),
		tickets.DeliveryStatusProjection(reg), tickets.ValidationStatusProjection(reg),
	} {
		if err := lite.Consumer(sqlite.FromPortable(p)).Handle(ctx, events); err != nil {
			t.Fatalf("%s on SQLite: %v", p.Name, err)
		}
		if err := pg.Consumer(postgres.FromPortable(p)).Handle(ctx, events); err != nil {
			t.Fatalf("%s on PostgreSQL: %v", p.Name, err)
		}
	}
	cfg := pg.Pool().Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = pg.Schema()
	pgDB := stdlib.OpenDB(*cfg)
	defer pgDB.Close()

	queries := map[string]func(db *sql.DB) (any, error){
		"user tickets":   func(db *sql.DB) (any, error) { return tickets.UserTickets(ctx, db, "ola") },
		"ticket details": func(db *sql.DB) (any, error) { return tickets.TicketDetailsOf(ctx, db, vip1) },
		"summary":        func(db *sql.DB) (any, error) { return tickets.ConcertTicketSummaryOf(ctx, db, "c1") },
		"delivery":       func(db *sql.DB) (any, error) { return tickets.DeliveryStatusOf(ctx, db, ga2) },
		"validation":     func(db *sql.DB) (any, error) { return tickets.ValidationStatusOf(ctx, db, ga1) },
	}
	for name, query := range queries {
		onSQLite, err := query(lite.DB())
		if err != nil {
			t.Fatalf("%s on SQLite: %v", name, err)
		}
		onPostgres, err := query(pgDB)
		if err != nil {
			t.Fatalf("%s on PostgreSQL: %v", name, err)
		}
		if diff := cmp.Diff(onSQLite, onPostgres); diff != "" {
			t.Errorf("%s differs (-SQLite +PostgreSQL):\n%s", name, diff)
		}
	}
	if s, err := tickets.ConcertTicketSummaryOf(ctx, pgDB, "c1"); err != nil || len(s.Types) != 2 || s.Types[0].Used != 1 {
		t.Errorf("summary on PostgreSQL: %+v, %v", s, err)
	}
}
