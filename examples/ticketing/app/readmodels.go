package app

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5/stdlib"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/reservations"
)

// ConcertDetails is a concert's details as the web pages, the API and the
// demo show them: the details from the concerts module's read model
// (concerts.DetailsOf), and each ticket type's capacity and seats left
// from the reservations module's (reservations.ConcertReservationsOf),
// which owns the seats. Each module answers for what it owns, and neither
// projects the other's events; package app, which wires the modules, puts
// the two side by side. The two read models may be a moment apart: a
// count of seats left is never below zero.
func ConcertDetails(ctx context.Context, db *sql.DB, concertID string) (concerts.Details, error) {
	d, err := concerts.DetailsOf(ctx, db, concertID)
	if err != nil {
		return d, err
	}
	seats, err := reservations.ConcertReservationsOf(ctx, db, concertID)
	if err != nil {
		return d, err
	}
	for i, tt := range d.TicketTypes {
		d.TicketTypes[i].Capacity = seats.Capacity[tt.Name]
		d.TicketTypes[i].Left = max(seats.Left(tt.Name), 0)
	}
	return d, nil
}

// ReadModelStore is where the read models' tables live: SQLite
// ([SQLiteReadModels]) or PostgreSQL ([OpenPostgresReadModels]). The
// projections are portable (package sqlprojection), so the same ones run
// on either, and the modules' queries run on DB on either.
type ReadModelStore interface {
	// DB is a pool to read the tables with.
	DB() *sql.DB
	// WriteTx runs fn in a write transaction of the same database, for
	// tables that are not read models (the web sessions).
	WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error
	// SetupProjection creates p's tables if they are missing.
	SetupProjection(ctx context.Context, p sqlprojection.Projection) error
	// Consumer applies events to p's tables in the transaction that saves
	// its checkpoint.
	Consumer(p sqlprojection.Projection) es.Consumer
	// Locker keeps each read model's subscription to one process.
	Locker() es.Locker
	// LoadCheckpoint returns a read model's position (0 before its first
	// batch), to show how far behind it is.
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
}

// SQLiteReadModels keeps the read models in a SQLite store, usually the
// event store itself.
func SQLiteReadModels(s *sqlite.Store) ReadModelStore { return sqliteReadModels{s} }

type sqliteReadModels struct{ s *sqlite.Store }

func (r sqliteReadModels) DB() *sql.DB { return r.s.DB() }
func (r sqliteReadModels) WriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return r.s.WriteTx(ctx, fn)
}
func (r sqliteReadModels) SetupProjection(ctx context.Context, p sqlprojection.Projection) error {
	return r.s.SetupProjection(ctx, sqlite.FromPortable(p))
}
func (r sqliteReadModels) Consumer(p sqlprojection.Projection) es.Consumer {
	return r.s.Consumer(sqlite.FromPortable(p))
}
func (r sqliteReadModels) Locker() es.Locker { return r.s.Locker() }
func (r sqliteReadModels) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	return r.s.LoadCheckpoint(ctx, name)
}

// PostgresReadModels keeps the read models in a PostgreSQL store's schema.
// Close it (it holds a database/sql pool) after the app stops.
type PostgresReadModels struct {
	s  *postgres.Store
	db *sql.DB
}

// OpenPostgresReadModels opens a database/sql pool on s's database whose
// search_path is s's schema, so that the modules' queries, written
// without a schema, find the tables the projections made there.
func OpenPostgresReadModels(s *postgres.Store) (*PostgresReadModels, error) {
	cc := s.Pool().Config().ConnConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	cc.RuntimeParams["search_path"] = s.Schema()
	db := stdlib.OpenDB(*cc)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("app: read models on PostgreSQL: %w", err)
	}
	return &PostgresReadModels{s: s, db: db}, nil
}

// Close closes the read pool.
func (r *PostgresReadModels) Close() error { return r.db.Close() }

// DB implements [ReadModelStore].
func (r *PostgresReadModels) DB() *sql.DB { return r.db }

// WriteTx implements [ReadModelStore].
func (r *PostgresReadModels) WriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// SetupProjection implements [ReadModelStore].
func (r *PostgresReadModels) SetupProjection(ctx context.Context, p sqlprojection.Projection) error {
	return r.s.SetupProjection(ctx, postgres.FromPortable(p))
}

// Consumer implements [ReadModelStore].
func (r *PostgresReadModels) Consumer(p sqlprojection.Projection) es.Consumer {
	return r.s.Consumer(postgres.FromPortable(p))
}

// Locker implements [ReadModelStore].
func (r *PostgresReadModels) Locker() es.Locker { return r.s.Locker() }

// LoadCheckpoint implements [ReadModelStore].
func (r *PostgresReadModels) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	return r.s.LoadCheckpoint(ctx, name)
}
