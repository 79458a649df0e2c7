package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
)

// ErrLeaseLost is the cause of a held context's cancellation when the
// lease's connection failed its health check (see [Locker]).
var ErrLeaseLost = errors.New("postgres: lease lost: its connection failed")

// Locker is an [es.Locker] on PostgreSQL session advisory locks, for
// leases across processes. A lease is a pg_try_advisory_lock held by one
// connection taken from the pool for as long as the lease lasts. When the
// holding process dies, its connection closes and PostgreSQL frees the
// lock, so a waiting process (which retries every 100-250 ms) takes over
// within a fraction of a second.
//
// The holder checks its connection every second; when the check fails
// (the connection was terminated, or the server did not answer within
// the check's timeout) the held context is cancelled with [ErrLeaseLost].
// Between the loss and the check, for up to a second or so, the old
// holder may still believe it holds the lease while a new one has it:
// work done under a lease must still be safe against a second worker,
// as [Store.Consumer]'s checkpoint row lock makes a projection.
type Locker struct {
	pool      *pgxpool.Pool
	namespace string
}

// NewLocker returns a Locker whose leases live in pool's database. Leases
// are named per namespace: lockers with the same namespace exclude each
// other, lockers with different ones never meet.
func NewLocker(pool *pgxpool.Pool, namespace string) *Locker {
	return &Locker{pool: pool, namespace: namespace}
}

// Locker returns a [Locker] for leases among the users of this store's
// schema.
func (s *Store) Locker() *Locker { return NewLocker(s.pool, s.schema) }

const (
	leaseMinPoll  = 100 * time.Millisecond
	leaseMaxPoll  = 250 * time.Millisecond
	leaseCheck    = time.Second
	leaseCheckMax = 3 * time.Second // a check slower than this counts as failed
)

// Lock implements [es.Locker]. It returns an error only when ctx ends
// first; a database that cannot be reached is retried.
func (l *Locker) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	key := lockKey("lease\x00"+name, l.namespace)
	for {
		conn, err := l.pool.Acquire(ctx)
		if err == nil {
			var ok bool
			err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
			if err == nil && ok {
				held, release := l.hold(ctx, conn, key)
				return held, release, nil
			}
			if err != nil {
				// The connection's state is unknown: do not return it.
				_ = conn.Conn().Close(context.WithoutCancel(ctx))
			}
			conn.Release()
		}
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("postgres: lock %s: %w", name, ctx.Err())
		}
		// Jitter, so that waiting processes do not poll in step.
		wait := leaseMinPoll + rand.N(leaseMaxPoll-leaseMinPoll)
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("postgres: lock %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// hold watches a granted lease's connection and returns the held context
// and the release function.
func (l *Locker) hold(ctx context.Context, conn *pgxpool.Conn, key int64) (context.Context, func()) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(leaseCheck)
		defer tick.Stop()
		for {
			select {
			case <-held.Done():
				return
			case <-tick.C:
			}
			cctx, ccancel := context.WithTimeout(held, leaseCheckMax)
			_, err := conn.Exec(cctx, "SELECT 1")
			ccancel()
			if err != nil && held.Err() == nil {
				cancel(fmt.Errorf("%w: %w", ErrLeaseLost, err))
				return
			}
		}
	}()
	var once sync.Once
	release := func() {
		once.Do(func() {
			cancel(context.Canceled)
			<-done // the watcher no longer uses the connection
			uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), leaseCheckMax)
			defer ucancel()
			var unlocked bool
			if err := conn.QueryRow(uctx, "SELECT pg_advisory_unlock($1)", key).Scan(&unlocked); err != nil || !unlocked {
				// Closing the session frees the lock if it is still held.
				_ = conn.Conn().Close(uctx)
			}
			conn.Release()
		})
	}
	return held, release
}

var _ es.Locker = (*Locker)(nil)
