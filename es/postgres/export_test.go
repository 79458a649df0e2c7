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
