// Package sqlprojection defines SQL read models that run unchanged on
// every SQL store of es: SQLite (esgo.dev/es/sqlite) and PostgreSQL
// (esgo.dev/es/postgres). A [Projection] is written once against the
// small [Tx] interface; each store adapts it to its own projection type
// (sqlite.FromPortable, postgres.FromPortable) and then runs it like any
// other: asynchronously through the store's Consumer, inline in every
// append (the store's Config.Inline), and rebuilt from scratch by the store's Rebuild.
// Moving an application from SQLite to PostgreSQL then changes the store,
// not the read models.
//
// The package depends on nothing but the standard library and es; the
// stores depend on it.
//
// # Portable SQL
//
// The SQL a projection sends must mean the same on both databases. What
// follows works on both (SQLite 3.35 or later, PostgreSQL 13 or later):
//
//   - Placeholders are $1, $2, ... (both stores bind them by number, in
//     any order, repeated as often as needed). Never ? or :name.
//   - Name tables through [Tables]: t.Name("orders") in every statement,
//     t.Index("orders", "by_user") for index names. Use lower-case table
//     names (letters, digits, underscores; see [Projection.Validate]):
//     PostgreSQL folds unquoted names in readers' queries to lower case.
//   - DDL: CREATE TABLE IF NOT EXISTS and CREATE [UNIQUE] INDEX IF NOT
//     EXISTS; PRIMARY KEY (single or composite), UNIQUE, NOT NULL,
//     DEFAULT with a literal, CHECK, REFERENCES between tables of the
//     same projection. Several statements separated by semicolons may go
//     in one Exec when it has no arguments.
//   - Column types: TEXT, BIGINT (64 bits; INTEGER is 32 bits in
//     PostgreSQL), INTEGER for small counts, BOOLEAN (bind Go bools;
//     TRUE and FALSE literals), DOUBLE PRECISION. Keep times as TEXT in
//     a fixed layout (RFC 3339 in UTC) or as BIGINT Unix time, JSON as
//     TEXT, and bytes encoded as TEXT: DATETIME, TIMESTAMPTZ, JSONB, BLOB
//     and BYTEA are not portable. Not portable either: SERIAL, IDENTITY,
//     AUTOINCREMENT (a projection's keys come from its events anyway),
//     STRICT and WITHOUT ROWID tables, and PostgreSQL's schemas.
//   - Upserts: INSERT ... ON CONFLICT (columns) DO UPDATE SET c =
//     excluded.c, or DO NOTHING. To refer to the existing row in SET,
//     alias the table: INSERT INTO t AS x ... SET n = x.n + excluded.n.
//     INSERT OR REPLACE and REPLACE INTO are SQLite's only. An INSERT ...
//     SELECT with an upsert needs a WHERE in its SELECT (SQLite's parser
//     asks for one; WHERE true will do).
//   - Expressions: COALESCE, CASE, CAST(x AS BIGINT), ||, the aggregate
//     functions count, sum, min, max, avg. SUM of BIGINT is NUMERIC in
//     PostgreSQL: CAST(SUM(x) AS BIGINT) to scan it into an int64. Not
//     portable: SQLite's two-argument min and max (GREATEST and LEAST in
//     PostgreSQL), now() and CURRENT_TIMESTAMP (use the event's time:
//     Apply must be deterministic anyway), LIKE (case-insensitive in
//     SQLite), JSON functions and operators.
//   - Bind Go values of the column's type: int64 or int for BIGINT and
//     INTEGER, string for TEXT, bool for BOOLEAN. SQLite converts
//     silently; PostgreSQL refuses a string for a BIGINT.
//   - Read all of a query's rows, and Close them, before the next
//     statement: PostgreSQL cannot interleave statements on one
//     transaction's connection.
//
// Whether a projection is portable is best shown by a test that runs it
// on both stores, as this package's own test does.
package sqlprojection

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"esgo.dev/es"
)

// Projection is a read model in SQL tables, written once for every SQL
// store of es. Give it to sqlite.FromPortable or postgres.FromPortable to
// run it; the stores' Consumer, Config.Inline and Rebuild then take the
// result.
//
// Apply must be deterministic, a function of the tables and the event
// only: a rebuild replays every event into fresh tables and must arrive
// where the live ones are. It receives events as stored (decode them with
// an [es.Registry], which upcasts old schema versions), every event of
// the store during a rebuild whatever the live subscription's filter, so
// it ignores events it does not project. An event may reach Apply again
// after a failure was rolled back, never twice in committed state.
type Projection struct {
	// Name identifies the projection: its checkpoint, its locks, its
	// rebuild. Unique within a store.
	Name string
	// Tables are the logical names of the tables the projection owns:
	// Rebuild builds fresh copies of exactly these and swaps them in, and
	// Setup must create them all.
	Tables []string
	// Setup creates the tables and their indexes if they do not exist,
	// under the names t gives. It must be idempotent (CREATE TABLE IF NOT
	// EXISTS) and must not write rows: the store runs it in a transaction
	// of its own before the projection applies its first event (a
	// consumer when it starts, a store its inline projections when it
	// opens, migrates or first appends, and SetupProjection on request),
	// and again on the fresh, empty tables of every rebuild. A table or
	// index added to Setup later is created at the next start; a change
	// to an existing table is a Rebuild, not an edit of live tables.
	Setup func(ctx context.Context, tx Tx, t Tables) error
	// Apply projects one event into the tables named by t, in the
	// transaction that records the projection's progress (inline: the
	// append's transaction).
	Apply func(ctx context.Context, tx Tx, t Tables, e es.Event) error
	// ApplyBatch, set instead of Apply, projects a batch of events, in
	// order, in that same transaction: a projection that folds a batch
	// into a few statements (one multi-row upsert) catches up faster
	// than one statement per event.
	ApplyBatch func(ctx context.Context, tx Tx, t Tables, events []es.Event) error
}

// Tx is the transaction Setup and Apply run in: the part of
// database/sql's *sql.Tx and pgx's pgx.Tx that both stores can offer.
// SQL follows the package's portable subset, with $1-style placeholders.
type Tx interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	// Query runs a statement that returns rows. Close them before the
	// next statement.
	Query(ctx context.Context, sql string, args ...any) (Rows, error)
	// QueryRow runs a statement that returns at most one row. Its error,
	// if any, is reported by Scan; no row is an error that matches
	// [database/sql.ErrNoRows] (errors.Is) on both stores.
	QueryRow(ctx context.Context, sql string, args ...any) Row
}

// Rows are the result of [Tx.Query], read like database/sql's: call Next
// before every Scan, check Err after the loop, and Close.
type Rows interface {
	// Next moves to the next row, reporting false after the last one or
	// on an error.
	Next() bool
	// Scan copies the current row's columns into dest.
	Scan(dest ...any) error
	// Err returns the error that ended the iteration, if any.
	Err() error
	// Close releases the rows; it is safe to call more than once.
	Close() error
}

// Row is the result of [Tx.QueryRow].
type Row interface {
	// Scan copies the row's columns into dest, or returns the query's
	// error, or one matching [database/sql.ErrNoRows] when there was no row.
	Scan(dest ...any) error
}

// Tables names the physical tables a Setup or Apply works on: the live
// ones, or during a rebuild their fresh replacements, whose names differ.
// SQL must name the projection's tables and indexes through it, never
// literally.
type Tables interface {
	// Name returns the quoted identifier of the physical table behind the
	// logical name, ready to put into SQL.
	Name(table string) string
	// Index returns the quoted name to give the index called index on the
	// logical table in CREATE INDEX. Index names are unique per database
	// or schema, and the fresh tables of a rebuild exist beside the live
	// ones, so only names from Index keep a rebuild's indexes apart. The
	// name is about "<table>__<index>", and PostgreSQL cuts identifiers
	// at 63 bytes: keep the two short enough to fit.
	Index(table, index string) string
}

// maxTableName is PostgreSQL's limit on identifiers, in bytes.
const maxTableName = 63

// Validate reports whether p can run on every SQL store: it has a name,
// Setup and one of Apply and ApplyBatch, and at least one table; table names are lower-case
// letters, digits and underscores, start with a letter, are at most 63
// bytes long and distinct, and do not start with a prefix the databases
// or es keep for themselves (es_, sqlite_, pg_). The stores' adapters
// call it before Setup, so a projection that would fail on the other
// database fails on this one too.
func (p Projection) Validate() error {
	switch {
	case p.Name == "":
		return errors.New("sqlprojection: projection has no name")
	case p.Setup == nil || (p.Apply == nil) == (p.ApplyBatch == nil):
		return fmt.Errorf("sqlprojection: projection %s: Setup and one of Apply and ApplyBatch are required", p.Name)
	case len(p.Tables) == 0:
		return fmt.Errorf("sqlprojection: projection %s owns no tables", p.Name)
	}
	seen := make(map[string]bool, len(p.Tables))
	for _, t := range p.Tables {
		if !portableName(t) {
			return fmt.Errorf("sqlprojection: projection %s: table name %q is not a portable identifier (a-z, 0-9 and _, starting with a letter, at most %d bytes)",
				p.Name, t, maxTableName)
		}
		for _, prefix := range []string{"es_", "sqlite_", "pg_"} {
			if strings.HasPrefix(t, prefix) {
				return fmt.Errorf("sqlprojection: projection %s: table name %q has the reserved prefix %s", p.Name, t, prefix)
			}
		}
		if seen[t] {
			return fmt.Errorf("sqlprojection: projection %s: table %s is listed twice", p.Name, t)
		}
		seen[t] = true
	}
	return nil
}

func portableName(s string) bool {
	if s == "" || len(s) > maxTableName || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
