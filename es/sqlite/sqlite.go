// Package sqlite is an [es.Store] on SQLite (github.com/mattn/go-sqlite3):
// the embedded default, one file and no set-up.
//
// The file is opened in WAL mode with one writer connection and a pool of
// readers. Writes are serialised by the writer connection within a process
// and by SQLite's write lock across processes; transactions begin
// IMMEDIATE, so a transaction that reads and then writes never has to
// upgrade its lock (the upgrade is where SQLite would return "database is
// locked" without waiting). Reads never hold a connection while the caller
// consumes events: they fetch batches with keyset pagination.
//
// Durability: by default (SyncFull) every acknowledged append has been
// fsynced to the WAL before Append returns, so it survives a process crash,
// an OS crash and a power loss (on a disk that honours fsync). With
// SyncNormal an acknowledged append survives a process crash but the last
// appends before an OS crash or power loss may be rolled back; the file is
// never corrupted either way. See docs/sqlite.md.
//
// Read models live in the same file as [Projection]s: fed by a
// subscription through [Store.Consumer] (the read model and its
// checkpoint commit in one transaction), kept inline in every append's
// transaction with [WithInline], and rebuilt from scratch while they keep
// serving with [Store.Rebuild]. [Store.Locker] gives a subscription one
// active instance across the processes sharing the file.
//
// The store is an [es.Outbox]: [Store.AppendEnqueue] writes messages to
// es_outbox in the transaction of the events that cause them, for an
// [es.Relay] to deliver. A consumer records what it handled with
// [Store.InboxTx] in the transaction ([Store.WriteTx]) of its own effect,
// so effects in the same file happen exactly once.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"esgo.dev/es"
)

// Synchronous is SQLite's synchronous setting for the store's connections,
// which decides what an acknowledged append survives.
type Synchronous int

const (
	// SyncFull fsyncs the WAL at every commit: an acknowledged append
	// survives a process crash, an OS crash and a power loss. The default.
	SyncFull Synchronous = iota
	// SyncNormal fsyncs only at checkpoints: an acknowledged append
	// survives a process crash, but an OS crash or power loss may roll back
	// the last appends (never corrupting the file). Faster.
	SyncNormal
)

func (s Synchronous) pragma() string {
	if s == SyncNormal {
		return "NORMAL"
	}
	return "FULL"
}

// Option configures a [Store].
type Option func(*config)

type config struct {
	clock        es.Clock
	metrics      *es.StoreMetrics
	logger       *slog.Logger
	sync         Synchronous
	busyTimeout  time.Duration
	pollInterval time.Duration
	inline       []Projection
}

// WithClock sets the clock that stamps RecordedAt and the outbox's and
// inbox's bookkeeping times (created, delivered, cancelled, handled)
// (default [es.SystemClock]). Which messages are due is decided by the
// time the relay passes to Due.
func WithClock(c es.Clock) Option { return func(cfg *config) { cfg.clock = c } }

// WithMetrics reports appends to m.
func WithMetrics(m *es.StoreMetrics) Option { return func(cfg *config) { cfg.metrics = m } }

// WithLogger sets the logger for the rare events worth a line, such as an
// append retried because another process held the write lock (default
// [slog.Default]).
func WithLogger(l *slog.Logger) Option { return func(cfg *config) { cfg.logger = l } }

// WithSynchronous chooses what an acknowledged append survives (default
// [SyncFull]).
func WithSynchronous(s Synchronous) Option { return func(cfg *config) { cfg.sync = s } }

// WithBusyTimeout sets how long one SQLite call waits for a lock held by
// another connection before the store backs off and retries (default 5s).
func WithBusyTimeout(d time.Duration) Option { return func(cfg *config) { cfg.busyTimeout = d } }

// WithPollInterval sets how often [Store.Notify] checks the file for
// appends made by other processes (default 200ms). Appends made through
// the same Store are signalled at once.
func WithPollInterval(d time.Duration) Option { return func(cfg *config) { cfg.pollInterval = d } }

const (
	// batchSize is how many rows a read fetches per query.
	batchSize = 500
	// maxBusyWait bounds how long the store keeps retrying a call that
	// another process keeps locking out, on top of the busy timeout.
	maxBusyWait = 30 * time.Second
	// timeLayout stores RecordedAt as fixed-width UTC text: readable in the
	// sqlite3 shell and ordered like the times it holds.
	timeLayout = "2006-01-02T15:04:05.000000000Z"
)

// Store is an event store in a SQLite file, safe for concurrent use by many
// goroutines and by several processes on the same file.
type Store struct {
	cfg     config
	path    string // the file's absolute path; "" in memory
	locker  *Locker
	writer  *sql.DB // exactly one connection: the in-process write queue
	readers *sql.DB
	keeper  *sql.Conn // in-memory mode only: keeps the database alive
	keepDB  *sql.DB
	stmts   statements

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error

	mu      sync.Mutex
	waiters map[chan struct{}]struct{}
}

// Open opens (creating if needed) the event store in the SQLite file at
// path and creates its tables if they are missing. Several processes may
// open the same file, at the same time too.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("es/sqlite: open %s: %w", path, err)
	}
	// A file: URI with an escaped path, so that a '?' or '#' in the name
	// cannot be read as parameters.
	name := (&url.URL{Scheme: "file", Path: abs}).String()
	return open(ctx, name, abs, opts)
}

// OpenMemory opens an empty store held in memory, for tests and examples.
// It behaves like a file store (several connections on one database,
// the same SQL) but without WAL, and it vanishes on Close.
func OpenMemory(ctx context.Context, opts ...Option) (*Store, error) {
	// The memdb VFS shares a database between the connections that open
	// the same name starting with '/', without shared-cache mode (and its
	// SQLITE_LOCKED errors). A random name keeps stores apart.
	return open(ctx, "file:/es-"+es.NewID(), "", opts)
}

// open opens the database called name: the file at path, or a memory
// database when path is empty.
func open(ctx context.Context, name, path string, opts []Option) (_ *Store, err error) {
	file := path != ""
	cfg := config{
		clock:        es.SystemClock{},
		logger:       slog.Default(),
		sync:         SyncFull,
		busyTimeout:  5 * time.Second,
		pollInterval: 200 * time.Millisecond,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Store{cfg: cfg, path: path, locker: NewLocker(path), closed: make(chan struct{}), waiters: make(map[chan struct{}]struct{})}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	params := url.Values{}
	params.Set("_busy_timeout", strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10))
	params.Set("_synchronous", cfg.sync.pragma())
	if file {
		params.Set("_journal_mode", "WAL")
	} else {
		params.Set("vfs", "memdb")
	}
	if !file {
		s.keepDB, err = sql.Open("sqlite3", name+"?"+params.Encode())
		if err != nil {
			return nil, fmt.Errorf("es/sqlite: open: %w", err)
		}
		if s.keeper, err = s.keepDB.Conn(ctx); err != nil {
			return nil, fmt.Errorf("es/sqlite: open: %w", err)
		}
	}

	wp := cloneValues(params)
	wp.Set("_txlock", "immediate")
	wp.Set("_foreign_keys", "1")
	if s.writer, err = sql.Open("sqlite3", name+"?"+wp.Encode()); err != nil {
		return nil, fmt.Errorf("es/sqlite: open: %w", err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	// Opening the writer switches a new file to WAL, which takes a lock
	// another process may hold for a moment: retry like any busy call.
	if err := s.retryBusy(ctx, func() error { return s.writer.PingContext(ctx) }); err != nil {
		return nil, fmt.Errorf("es/sqlite: open: %w", err)
	}
	if err := s.withWriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, schema)
		return err
	}); err != nil {
		return nil, fmt.Errorf("es/sqlite: create schema: %w", err)
	}
	if err := s.setupInline(ctx); err != nil {
		return nil, err
	}

	rp := cloneValues(params)
	rp.Del("_journal_mode") // set once by the writer; it is stored in the file
	rp.Set("_query_only", "1")
	if s.readers, err = sql.Open("sqlite3", name+"?"+rp.Encode()); err != nil {
		return nil, fmt.Errorf("es/sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.readers.SetMaxOpenConns(n)
	s.readers.SetMaxIdleConns(n)

	if err := s.stmts.prepare(ctx, s.writer, s.readers); err != nil {
		return nil, fmt.Errorf("es/sqlite: prepare: %w", err)
	}
	return s, nil
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Close closes the store's connections. Iterators still running fail;
// channels from Notify are closed.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		errs := []error{s.stmts.close()}
		for _, db := range []*sql.DB{s.readers, s.writer} {
			if db != nil {
				errs = append(errs, db.Close())
			}
		}
		if s.keeper != nil {
			errs = append(errs, s.keeper.Close())
		}
		if s.keepDB != nil {
			errs = append(errs, s.keepDB.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// isBusy reports whether err is SQLite saying that another connection
// holds a lock it needs, after the busy timeout ran out.
func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// retryBusy calls fn until it returns something other than a busy error,
// backing off with jitter between tries, for at most maxBusyWait. In one
// process the writer connection serialises writes and WAL readers never
// wait for it, so this only matters when other processes share the file
// (BEGIN IMMEDIATE against their writer, a checkpoint, WAL recovery).
func (s *Store) retryBusy(ctx context.Context, fn func() error) error {
	start := time.Now()
	backoff := 5 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !isBusy(err) || time.Since(start) > maxBusyWait {
			return err
		}
		s.cfg.logger.DebugContext(ctx, "es/sqlite: database busy, retrying", "attempt", attempt, "err", err)
		wait := backoff/2 + rand.N(backoff)
		backoff = min(2*backoff, time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// withWriteTx runs fn in an IMMEDIATE transaction on the writer connection
// and commits, retrying the whole transaction when SQLite reports busy:
// nothing was committed then, so a retry is safe. fn must not keep
// anything from a failed try.
func (s *Store) withWriteTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.retryBusy(ctx, func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		tx, err := s.writer.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// signal wakes every Notify channel of this store.
func (s *Store) signal() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.waiters {
		select {
		case ch <- struct{}{}:
		default: // a signal is already pending
		}
	}
}

// Notify implements [es.Notifier]. Appends through this Store are
// signalled at once; appends by other processes on the same file are
// noticed by polling the highest position every poll interval (see
// [WithPollInterval]). The channel is closed when ctx is done or the store
// is closed.
func (s *Store) Notify(ctx context.Context) <-chan struct{} {
	signal := make(chan struct{}, 1)
	out := make(chan struct{})
	s.mu.Lock()
	s.waiters[signal] = struct{}{}
	s.mu.Unlock()
	go func() {
		defer close(out)
		defer func() {
			s.mu.Lock()
			delete(s.waiters, signal)
			s.mu.Unlock()
		}()
		last, _ := s.maxPosition(ctx)
		tick := time.NewTicker(s.cfg.pollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			case <-signal:
			case <-tick.C:
				// A failed poll (the store closing, a busy file) is
				// retried at the next tick.
				pos, err := s.maxPosition(ctx)
				if err != nil || pos == last {
					continue
				}
				last = pos
			}
			select {
			case out <- struct{}{}:
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			}
		}
	}()
	return out
}

func (s *Store) maxPosition(ctx context.Context) (int64, error) {
	var pos int64
	err := s.retryBusy(ctx, func() error {
		return s.stmts.maxPosition.QueryRowContext(ctx).Scan(&pos)
	})
	return pos, err
}
