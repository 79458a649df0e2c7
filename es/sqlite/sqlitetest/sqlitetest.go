// Package sqlitetest runs the projection specs of esgo.dev/es/estest on
// read models kept in SQLite tables by a [sqlite.Projection], as
// net/http/httptest runs handlers on a real server: each spec gets a fresh
// in-memory store, and events go through the store's real consumer.
//
// It is a package of its own because estest must not import the stores,
// whose tests import estest.
package sqlitetest

import (
	"context"
	"database/sql"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
)

// ReadModel adapts p to [estest.ReadModel] for [estest.Projection]. p
// runs on a fresh in-memory store, closed when the test ends; View calls
// view with the store's read pool ([sqlite.Store.DB]) to query p's tables.
//
// HandleEvent goes through [sqlite.Store.Consumer], which commits p's
// changes with its checkpoint and skips events at or below it: that is
// what [estest.ProjectionSpec.Redelivered] checks. The read model also
// implements [estest.Reapplier], by moving the checkpoint back before the
// event and handling it again, so that p.Apply runs twice:
// [estest.ProjectionSpec.AppliedTwice] checks that p itself is idempotent.
func ReadModel[V any](t testing.TB, p sqlite.Projection, view func(ctx context.Context, db *sql.DB) (V, error)) estest.ReadModel[V] {
	t.Helper()
	if view == nil {
		t.Fatalf("sqlitetest: ReadModel of %s: nil view", p.Name)
	}
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatalf("sqlitetest: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.SetupProjection(ctx, p); err != nil {
		t.Fatalf("sqlitetest: %v", err)
	}
	return &readModel[V]{store: store, name: p.Name, consumer: store.Consumer(p), view: view}
}

type readModel[V any] struct {
	store    *sqlite.Store
	name     string
	consumer es.Consumer
	view     func(context.Context, *sql.DB) (V, error)
}

func (m *readModel[V]) HandleEvent(ctx context.Context, e es.Event) error {
	return m.consumer.Handle(ctx, []es.Event{e})
}

func (m *readModel[V]) ReapplyEvent(ctx context.Context, e es.Event) error {
	if err := m.store.SaveCheckpoint(ctx, m.name, e.Position-1); err != nil {
		return err
	}
	return m.consumer.Handle(ctx, []es.Event{e})
}

func (m *readModel[V]) View(ctx context.Context) (V, error) { return m.view(ctx, m.store.DB()) }
