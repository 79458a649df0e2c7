package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// terminateLease ends the server session holding the lease name of
// namespace.
func terminateLease(ctx context.Context, t *testing.T, pool *pgxpool.Pool, namespace, name string) {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`,
		postgres.LeaseKey(namespace, name)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("%d sessions hold the lease %s", n, name)
	}
}

// leaseSessions returns how many server sessions hold leases of
// namespace.
func leaseSessions(ctx context.Context, t *testing.T, pool *pgxpool.Pool, namespace string, names ...string) int {
	t.Helper()
	keys := make([]int64, len(names))
	for i, name := range names {
		keys[i] = postgres.LeaseKey(namespace, name)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = ANY($1::bigint[])`, keys).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestLockerTryLockHoldsManyLeasesOnOneConnection: the leases TryLock
// takes share one server session, exclude the other Lockers' (and the
// Locker's own second try), are all lost together when that session
// ends, and can then be taken by another Locker.
func TestLockerTryLockHoldsManyLeasesOnOneConnection(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := s.Locker(), s.Locker()
	var (
		names []string
		helds []context.Context
	)
	for i := range 16 {
		name := fmt.Sprintf("group-%d", i)
		held, release, ok, err := a.TryLock(ctx, name)
		if err != nil || !ok {
			t.Fatalf("TryLock %s = %v, %v", name, ok, err)
		}
		defer release()
		names, helds = append(names, name), append(helds, held)
	}
	if n := leaseSessions(ctx, t, pool, s.Schema(), names...); n != 1 {
		t.Fatalf("16 leases on %d server sessions, want 1", n)
	}
	if _, _, ok, err := a.TryLock(ctx, names[3]); ok || err != nil {
		t.Fatalf("the holder's second TryLock = %v, %v: want false", ok, err)
	}
	if _, _, ok, err := b.TryLock(ctx, names[3]); ok || err != nil {
		t.Fatalf("another Locker's TryLock = %v, %v: want false", ok, err)
	}
	terminateLease(ctx, t, pool, s.Schema(), names[0])
	for i, held := range helds {
		select {
		case <-held.Done():
			if !errors.Is(context.Cause(held), postgres.ErrLeaseLost) {
				t.Fatalf("lease %s: cause %v, want ErrLeaseLost", names[i], context.Cause(held))
			}
		case <-ctx.Done():
			t.Fatalf("the loss of lease %s was not noticed", names[i])
		}
	}
	for _, name := range names {
		held, release, ok, err := b.TryLock(ctx, name)
		if err != nil || !ok {
			t.Fatalf("TryLock %s after its holder's session ended = %v, %v", name, ok, err)
		}
		release()
		if held.Err() == nil {
			t.Fatal("held context still live after release")
		}
	}
	if n := leaseSessions(ctx, t, pool, s.Schema(), names...); n != 0 {
		t.Fatalf("released leases still held by %d sessions", n)
	}
}
