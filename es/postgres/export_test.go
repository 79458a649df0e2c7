package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WithTestHooks stops appends at known points: afterReserve runs once the
// positions are reserved and the streams locked, beforeCommit just before
// COMMIT. Either may be nil.
func WithTestHooks(afterReserve, beforeCommit func(ctx context.Context, tx pgx.Tx) error) Option {
	return func(s *Store) {
		s.hooks = &testHooks{afterReserve: afterReserve, beforeCommit: beforeCommit}
	}
}

// LeaseKey is the advisory lock key of a lease of a [Locker].
func LeaseKey(namespace, name string) int64 { return lockKey("lease\x00"+name, namespace) }
