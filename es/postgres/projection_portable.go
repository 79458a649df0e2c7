package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
)

// FromPortable returns the store-neutral projection p as a [Projection]
// of this store, for [Store.Consumer], [Config].Inline and [Store.Rebuild]:
// the same p runs on SQLite through sqlite.FromPortable. p is checked
// ([sqlprojection.Projection.Validate]) before every Setup, which runs
// before any event is applied.
func FromPortable(p sqlprojection.Projection) Projection {
	pp := Projection{
		Name:   p.Name,
		Tables: p.Tables,
		Setup: func(ctx context.Context, tx pgx.Tx, t Tables) error {
			if err := p.Validate(); err != nil {
				return err
			}
			return p.Setup(ctx, portableTx{tx}, t)
		},
	}
	if p.ApplyBatch != nil {
		pp.ApplyBatch = func(ctx context.Context, tx pgx.Tx, t Tables, events []es.Event) error {
			return p.ApplyBatch(ctx, portableTx{tx}, t, events)
		}
	} else if p.Apply != nil {
		pp.Apply = func(ctx context.Context, tx pgx.Tx, t Tables, e es.Event) error {
			return p.Apply(ctx, portableTx{tx}, t, e)
		}
	}
	return pp
}

// portableTx is a pgx.Tx as a [sqlprojection.Tx].
type portableTx struct{ tx pgx.Tx }

func (t portableTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

func (t portableTx) Query(ctx context.Context, query string, args ...any) (sqlprojection.Rows, error) {
	rows, err := t.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return portableRows{rows}, nil
}

func (t portableTx) QueryRow(ctx context.Context, query string, args ...any) sqlprojection.Row {
	// No row is pgx.ErrNoRows, which matches sql.ErrNoRows, as Row
	// promises (the portable projection test checks it).
	return t.tx.QueryRow(ctx, query, args...)
}

// portableRows are pgx.Rows as [sqlprojection.Rows].
type portableRows struct{ rows pgx.Rows }

func (r portableRows) Next() bool             { return r.rows.Next() }
func (r portableRows) Scan(dest ...any) error { return r.rows.Scan(dest...) }
func (r portableRows) Err() error             { return r.rows.Err() }

func (r portableRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}
