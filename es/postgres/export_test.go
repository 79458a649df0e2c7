package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WithTestHooks makes s stop its appends at known points, and returns s:
// afterReserve runs once the positions are reserved and the streams
// locked, beforeCommit just before COMMIT. Either may be nil. Set hooks
// before the store is used.
func WithTestHooks(s *Store, afterReserve, beforeCommit func(ctx context.Context, tx pgx.Tx) error) *Store {
	s.hooks = &testHooks{afterReserve: afterReserve, beforeCommit: beforeCommit}
	return s
}

// LeaseKey is the advisory lock key of a lease of a [Locker].
func LeaseKey(namespace, name string) int64 { return lockKey("lease\x00"+name, namespace) }

// HorizonSQL is the WITH clause of the read horizon (see horizonCTE),
// for tests that inspect it.
func HorizonSQL(s *Store) string { return s.horizon() }

// HorizonWithLocks is the WITH clause of the read horizon over a stand-in
// for pg_locks (a parenthesized query with pg_locks' columns).
func HorizonWithLocks(s *Store, locks string) string { return s.horizonWith(locks) }

// WriterLockKey is the advisory lock key every writer holds, shared.
func WriterLockKey(s *Store) int64 { return s.enqueuerKey }

// EventsTable is the quoted name of the store's events table.
func EventsTable(s *Store) string { return s.events }
