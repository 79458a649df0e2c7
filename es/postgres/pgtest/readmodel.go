package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
)

// ReadModel adapts p to [estest.ReadModel] for [estest.Projection]. p
// runs in a store of its own ([NewStore]: a fresh schema, dropped when the
// test ends). View calls view in a read-only transaction whose search_path
// is that schema, so that view names p's tables as the application's
// queries do, without a schema.
//
// HandleEvent goes through [postgres.Store.Consumer], which commits p's
// changes with its checkpoint and skips events at or below it: that is
// what [estest.ProjectionSpec.Redelivered] checks. The read model also
// implements [estest.Reapplier], by moving the checkpoint back before the
// event and handling it again, so that p.Apply runs twice:
// [estest.ProjectionSpec.AppliedTwice] checks that p itself is idempotent.
func ReadModel[V any](tb testing.TB, p postgres.Projection, view func(ctx context.Context, tx pgx.Tx) (V, error)) estest.ReadModel[V] {
	tb.Helper()
	if view == nil {
		tb.Fatalf("pgtest: ReadModel of %s: nil view", p.Name)
	}
	store := NewStore(tb, postgres.Config{})
	return &readModel[V]{store: store, name: p.Name, consumer: store.Consumer(p), view: view}
}

type readModel[V any] struct {
	store    *postgres.Store
	name     string
	consumer es.Consumer
	view     func(context.Context, pgx.Tx) (V, error)
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

func (m *readModel[V]) View(ctx context.Context) (V, error) {
	var v V
	err := pgx.BeginTxFunc(ctx, m.store.Pool(), pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT set_config('search_path', $1, true)", pgx.Identifier{m.store.Schema()}.Sanitize()); err != nil {
			return err
		}
		var err error
		v, err = m.view(ctx, tx)
		return err
	})
	return v, err
}
