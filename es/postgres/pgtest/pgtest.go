// Package pgtest gives tests a PostgreSQL database to work in, as
// net/http/httptest gives them a server: a connection pool, a fresh schema
// of their own that is dropped when the test ends, and a migrated
// [postgres.Store] in it.
//
// [ReadModel] runs a [postgres.Projection] in such a store for the
// projection specs of esgo.dev/es/estest, which cannot import the stores
// (their tests import it).
//
// The server is found through ES_POSTGRES_DSN (default [DefaultDSN]). When
// it cannot be reached the test is skipped, so that `go test ./...` works
// on a machine without PostgreSQL; set ES_REQUIRE_POSTGRES=1 (as CI does)
// to make that a failure instead.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es/postgres"
)

// DefaultDSN is the server tests use when ES_POSTGRES_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN returns ES_POSTGRES_DSN, or [DefaultDSN] when it is not set.
func DSN() string {
	if dsn := os.Getenv("ES_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// Required reports whether ES_REQUIRE_POSTGRES=1, in which case a missing
// server fails tests instead of skipping them.
func Required() bool { return os.Getenv("ES_REQUIRE_POSTGRES") == "1" }

// Pool returns a pool connected to [DSN], closed when the test ends. It
// skips the test (or fails it, see [Required]) if the server is not
// reachable within a few seconds.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(DSN())
	if err != nil {
		tb.Fatalf("pgtest: ES_POSTGRES_DSN: %v", err)
	}
	// Enough for the concurrency tests, small enough that many tests in
	// parallel stay below the server's max_connections.
	cfg.MaxConns = 12
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = pool.Ping(ctx)
	}
	if err != nil {
		if pool != nil {
			pool.Close()
		}
		if Required() {
			tb.Fatalf("pgtest: PostgreSQL at %s is required (ES_REQUIRE_POSTGRES=1) but unreachable: %v", redact(cfg), err)
		}
		tb.Skipf("pgtest: PostgreSQL at %s unreachable (set ES_POSTGRES_DSN, or ES_REQUIRE_POSTGRES=1 to fail): %v", redact(cfg), err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// redact names the server without the password.
func redact(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return c.User + "@" + c.Host + "/" + c.Database
}

// Schema returns the name of a new, empty schema made for this test and
// dropped, with everything in it, when the test ends. The name starts with
// "es_test_", followed by part of the test's name and a random suffix.
func Schema(tb testing.TB, pool *pgxpool.Pool) string {
	tb.Helper()
	name := schemaName(tb.Name())
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	return name
}

// schemaName makes a valid, unique, at most 63-byte schema name that
// still says which test it belongs to.
func schemaName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	part := b.String()
	if len(part) > 38 {
		part = part[len(part)-38:] // the end of a subtest path says most
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix) // documented never to return an error
	return "es_test_" + part + "_" + hex.EncodeToString(suffix)
}

// NewStore returns a store configured by cfg in a fresh migrated schema of
// its own (see [Schema]; cfg.Schema is ignored), closed when the test
// ends.
func NewStore(tb testing.TB, cfg postgres.Config) *postgres.Store {
	tb.Helper()
	pool := Pool(tb)
	return NewStoreWithPool(tb, pool, cfg)
}

// NewStoreWithPool is [NewStore] on a pool the test already has, so that
// the test can also run its own SQL in the store's database.
func NewStoreWithPool(tb testing.TB, pool *pgxpool.Pool, cfg postgres.Config) *postgres.Store {
	tb.Helper()
	cfg.Schema = Schema(tb, pool)
	ctx := context.Background()
	s, err := postgres.New(ctx, pool, cfg)
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	return s
}
