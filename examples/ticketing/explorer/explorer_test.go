package explorer_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/explorer"
)

// stores returns the projection kept inline by a SQLite and a PostgreSQL
// store, each with a pool to read it.
func stores(t *testing.T) map[string]struct {
	es.Store
	db *sql.DB
} {
	t.Helper()
	ctx := context.Background()
	lite, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{sqlite.FromPortable(explorer.Projection())}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	pool := pgtest.Pool(t)
	pg := pgtest.NewStoreWithPool(t, pool, postgres.Config{Inline: []postgres.Projection{postgres.FromPortable(explorer.Projection())}})
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = pg.Schema()
	conn := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { conn.Close() })
	return map[string]struct {
		es.Store
		db *sql.DB
	}{"sqlite": {lite, lite.DB()}, "postgres": {pg, conn}}
}

func TestTheExplorerListsStreamsAndFollowsCorrelationsOnBothStores(t *testing.T) {
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			purchase, other := es.NewID(), es.NewID()
			event := func(correlation, causation string) es.EventData {
				return es.EventData{ID: es.NewID(), Type: "Happened", SchemaVersion: 1, Data: []byte(`{}`),
					Metadata: es.Metadata{CorrelationID: correlation, CausationID: causation}}
			}
			checkout := event(purchase, purchase)
			placed := event(purchase, "message-1")
			appends := []struct {
				stream string
				events []es.EventData
			}{
				{"cart-1", []es.EventData{event(other, other), checkout}},
				{"order-7", []es.EventData{placed, event(other, "later")}},
				{"user-1", []es.EventData{event("", "")}},
				{"user-2", []es.EventData{event(other, other)}},
			}
			for _, a := range appends {
				if _, err := es.Append(ctx, s, a.stream, es.AnyVersion, a.events...); err != nil {
					t.Fatal(err)
				}
			}
			got, err := explorer.Streams(ctx, s.db, "", "", 10)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, st := range got {
				ids = append(ids, st.ID)
			}
			if !slices.Equal(ids, []string{"cart-1", "order-7", "user-1", "user-2"}) || got[0].Version != 2 || got[0].Category != "cart" {
				t.Errorf("streams %+v", got)
			}
			if got, err := explorer.Streams(ctx, s.db, "user", "user-1", 10); err != nil || len(got) != 1 || got[0].ID != "user-2" {
				t.Errorf("users after user-1: %+v, %v", got, err)
			}
			if cats, err := explorer.Categories(ctx, s.db); err != nil || !slices.Equal(cats, []string{"cart", "order", "user"}) {
				t.Errorf("categories %v, %v", cats, err)
			}
			links, err := explorer.Correlated(ctx, s.db, purchase, 10)
			if err != nil || len(links) != 2 || links[0].EventID != checkout.ID || links[1].EventID != placed.ID ||
				links[1].CausationID != "message-1" || links[1].StreamID != "order-7" || links[1].Version != 1 {
				t.Errorf("the purchase's events: %+v, %v", links, err)
			}
			if id, err := explorer.StreamCorrelation(ctx, s.db, "order-7"); err != nil || id != purchase {
				t.Errorf("the order's correlation: %q, %v; want %s", id, err, purchase)
			}
			if ok, err := explorer.StreamExists(ctx, s.db, "user-1"); err != nil || !ok {
				t.Errorf("user-1 exists: %v, %v", ok, err)
			}
			if ok, err := explorer.CorrelationExists(ctx, s.db, "user-1"); err != nil || ok {
				t.Errorf("a stream ID taken for a correlation: %v, %v", ok, err)
			}
		})
	}
}
