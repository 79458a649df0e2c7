// Package sqlspec adapts the ticketing example's SQLite read models to
// estest projection specs.
package sqlspec

import (
	"context"
	"database/sql"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
)

// ReadModel runs projection p on a fresh in-memory SQLite store, through the
// store's real projection consumer (which commits each event with the
// checkpoint), and shows view's query of its tables.
func ReadModel[V any](t testing.TB, p sqlite.Projection, view func(ctx context.Context, db *sql.DB) (V, error)) estest.ReadModel[V] {
	t.Helper()
	store, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.SetupProjection(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	return &model[V]{store: store, consumer: store.Consumer(p), view: view}
}

type model[V any] struct {
	store    *sqlite.Store
	consumer es.Consumer
	view     func(context.Context, *sql.DB) (V, error)
}

func (m *model[V]) HandleEvent(ctx context.Context, e es.Event) error {
	return m.consumer.Handle(ctx, []es.Event{e})
}

func (m *model[V]) View(ctx context.Context) (V, error) { return m.view(ctx, m.store.DB()) }
