package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
)

// ErrLeaseLost is the cause of a held context's cancellation when the
// lease's connection failed its health check (see [Locker]).
var ErrLeaseLost = errors.New("postgres: lease lost: its connection failed")

// Locker is an [es.Locker] on PostgreSQL session advisory locks, for
// leases across processes. A lease is a pg_try_advisory_lock held by a
// dedicated connection, opened from the pool's configuration but not
// taken from the pool, for as long as the lease lasts. Leases therefore
// never starve the pool: a process that wins n relay workers' leases
// ([es.RelayConfig].Locker) still has every pool connection for the work done
// under them. When the holding process dies, its connection closes and
// PostgreSQL frees the lock, so a waiting process (which retries every
// 100-250 ms on its own connection) takes over within a fraction of a
// second.
//
// The holder checks its connection every 100 ms (a SELECT 1 on the
// lease's own connection); when the check fails (the connection was
// terminated, or the server did not answer within the check's timeout)
// the held context is cancelled with [ErrLeaseLost]. The check is that
// frequent because a waiter polls every 100-250 ms: when the server ends
// the holder's session, the holder should hear of it before a waiter
// takes over. It is not a fence, though: between the loss and the check
// the old holder may still act while a new one has the lease, so work
// done under a lease must still be safe against a second worker, as
// [Store.Consumer]'s checkpoint row lock makes a projection, and a relay
// can deliver a message twice (docs/outbox.md).
//
// Each lease taken by Lock, waiting or held, uses one server connection
// of its own, so count them against the server's max_connections. The
// leases taken by TryLock (a relay's bucket groups: see [es.Relay]) all
// live on one connection per Locker, since advisory locks belong to a
// session and one session can hold any number of them: when that
// connection fails its check, every one of them is lost at once, and
// every held context they returned is cancelled with [ErrLeaseLost].
type Locker struct {
	pool      *pgxpool.Pool
	namespace string

	mu      sync.Mutex
	session *leaseSession // of TryLock's leases; nil until one is taken
}

// NewLocker returns a Locker whose leases live in pool's database (on
// connections opened with pool's configuration). Leases are named per
// namespace: lockers with the same namespace exclude each other, lockers
// with different ones never meet.
func NewLocker(pool *pgxpool.Pool, namespace string) *Locker {
	return &Locker{pool: pool, namespace: namespace}
}

// Locker returns a [Locker] for leases among the users of this store's
// schema.
func (s *Store) Locker() *Locker { return NewLocker(s.pool, s.schema) }

const (
	leaseMinPoll  = 100 * time.Millisecond
	leaseMaxPoll  = 250 * time.Millisecond
	leaseCheck    = 100 * time.Millisecond
	leaseCheckMax = 3 * time.Second // a check slower than this counts as failed
)

// Lock implements [es.Locker]. It returns an error only when ctx ends
// first; a database that cannot be reached is retried. While it waits it
// keeps one connection open and polls on it, rather than connecting anew
// every try.
func (l *Locker) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	key := lockKey("lease\x00"+name, l.namespace)
	var conn *pgx.Conn
	closeConn := func() {
		if conn != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseCheckMax)
			_ = conn.Close(cctx)
			cancel()
			conn = nil
		}
	}
	for {
		var err error
		if conn == nil {
			conn, err = pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
			if err != nil {
				conn = nil
			}
		}
		if conn != nil {
			var ok bool
			err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
			if err == nil && ok {
				held, release := l.hold(ctx, conn, key)
				return held, release, nil
			}
			if err != nil {
				// The connection's state is unknown (the lock may even
				// have been granted): closing it frees whatever it holds.
				closeConn()
			}
		}
		if ctx.Err() != nil {
			closeConn()
			return nil, nil, fmt.Errorf("postgres: lock %s: %w", name, ctx.Err())
		}
		// Jitter, so that waiting processes do not poll in step.
		wait := leaseMinPoll + rand.N(leaseMaxPoll-leaseMinPoll)
		select {
		case <-ctx.Done():
			closeConn()
			return nil, nil, fmt.Errorf("postgres: lock %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// hold watches a granted lease's connection and returns the held context
// and the release function, which closes the connection.
func (l *Locker) hold(ctx context.Context, conn *pgx.Conn, key int64) (context.Context, func()) {
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
			// Unlock first: closing alone frees the lock too, but only
			// once the server has noticed, and a release should let the
			// next holder in at once.
			_, _ = conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key)
			_ = conn.Close(uctx)
		})
	}
	return held, release
}

// TryLock implements [es.TryLocker]: it takes the lease called name, on
// the Locker's shared connection (opened when needed, closed when it
// holds no lease), if no session holds it, and reports false at once
// otherwise. A lease this Locker holds through TryLock counts as held;
// one it holds through Lock is on another session, which excludes it
// anyway. It returns an error when the server cannot be reached.
func (l *Locker) TryLock(ctx context.Context, name string) (context.Context, func(), bool, error) {
	key := lockKey("lease\x00"+name, l.namespace)
	for {
		s, err := l.openSession(ctx)
		if err != nil {
			return nil, nil, false, fmt.Errorf("postgres: try lock %s: %w", name, err)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			continue
		}
		if s.held[key] {
			s.mu.Unlock()
			return nil, nil, false, nil
		}
		// The query must not be cut short by ctx: a connection whose query
		// was interrupted is closed, and with it every lease it holds.
		qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaseCheckMax)
		var ok bool
		err = s.conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
		cancel()
		if err != nil {
			// The lock may even have been granted: closing frees it.
			s.closeLocked(fmt.Errorf("%w: %w", ErrLeaseLost, err))
			s.mu.Unlock()
			return nil, nil, false, fmt.Errorf("postgres: try lock %s: %w", name, err)
		}
		if !ok {
			s.mu.Unlock()
			return nil, nil, false, nil
		}
		s.held[key] = true
		s.mu.Unlock()
		held, cancelHeld := context.WithCancelCause(ctx)
		stop := context.AfterFunc(s.lost, func() { cancelHeld(context.Cause(s.lost)) })
		var once sync.Once
		return held, func() {
			once.Do(func() {
				cancelHeld(context.Canceled)
				stop()
				l.unlock(s, key)
			})
		}, true, nil
	}
}

// leaseSession is the connection on which a Locker holds the leases
// TryLock took.
type leaseSession struct {
	conn *pgx.Conn
	lost context.Context // cancelled, with the cause, when the session ends
	end  context.CancelCauseFunc

	mu     sync.Mutex // serialises the use of conn; guards what follows
	held   map[int64]bool
	closed bool
}

// errSessionIdle ends a lease session that no longer holds a lease.
var errSessionIdle = errors.New("postgres: lease session closed: it held no lease")

// openSession returns the Locker's lease session, connecting one if there
// is none or it ended.
func (l *Locker) openSession(ctx context.Context) (*leaseSession, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.session != nil && l.session.lost.Err() == nil {
		return l.session, nil
	}
	conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, err
	}
	lost, end := context.WithCancelCause(context.Background())
	s := &leaseSession{conn: conn, lost: lost, end: end, held: make(map[int64]bool)}
	go s.watch()
	l.session = s
	return s, nil
}

// watch checks the session's connection every leaseCheck, as hold does a
// lease's, until the session ends; a failed check ends it.
func (s *leaseSession) watch() {
	tick := time.NewTicker(leaseCheck)
	defer tick.Stop()
	for {
		select {
		case <-s.lost.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		if !s.closed {
			cctx, cancel := context.WithTimeout(context.Background(), leaseCheckMax)
			if _, err := s.conn.Exec(cctx, "SELECT 1"); err != nil {
				s.closeLocked(fmt.Errorf("%w: %w", ErrLeaseLost, err))
			}
			cancel()
		}
		s.mu.Unlock()
	}
}

// closeLocked ends the session with cause and closes its connection,
// which frees every lock it held. s.mu must be held.
func (s *leaseSession) closeLocked(cause error) {
	if s.closed {
		return
	}
	s.closed = true
	s.end(cause)
	cctx, cancel := context.WithTimeout(context.Background(), leaseCheckMax)
	_ = s.conn.Close(cctx)
	cancel()
}

// unlock releases the lease key of session s, and closes s when it holds
// no lease any more.
func (l *Locker) unlock(s *leaseSession, key int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	delete(s.held, key)
	// Unlock even when closing the session next: closing frees the lock
	// too, but only once the server has noticed, and a release should let
	// the next holder in at once.
	uctx, cancel := context.WithTimeout(context.Background(), leaseCheckMax)
	defer cancel()
	var ok bool
	if err := s.conn.QueryRow(uctx, "SELECT pg_advisory_unlock($1)", key).Scan(&ok); err != nil {
		// Whether the lock was freed is unknown: closing frees it, and
		// the others with it, whose holders hear of it.
		s.closeLocked(fmt.Errorf("%w: %w", ErrLeaseLost, err))
		return
	}
	if len(s.held) == 0 {
		s.closeLocked(errSessionIdle)
		if l.session == s {
			l.session = nil
		}
	}
}

var (
	_ es.Locker    = (*Locker)(nil)
	_ es.TryLocker = (*Locker)(nil)
)
