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
// transaction ([Config].Inline), and rebuilt from scratch while they keep
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
	"cmp"
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
	"esgo.dev/es/storekit"
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

// Config configures a [Store]. The zero value is a working configuration:
// each field says its default.
type Config struct {
	// Synchronous chooses what an acknowledged append survives (default
	// [SyncFull]).
	Synchronous Synchronous
	// BusyTimeout is how long one SQLite call waits for a lock held by
	// another connection before the store backs off and retries (default
	// 5s).
	BusyTimeout time.Duration
	// PollInterval is how often [Store.Notify] checks the file for appends
	// made by other processes (default 200ms). Appends made through the
	// same Store are signalled at once.
	PollInterval time.Duration
	// Clock stamps RecordedAt and the outbox's and inbox's bookkeeping
	// times (created, delivered, cancelled, handled) (default
	// [es.SystemClock]). Which messages are due is decided by the time the
	// relay passes to Due.
	Clock es.Clock
	// Inline are projections kept up to date inside every append's
	// transaction: Apply runs for each appended event, with its version
	// and position assigned, before the commit. A read after Append returns
	// sees the events' effects; an Apply error rolls the whole append back
	// and Append returns it. Open creates the tables (Setup) and, when it
	// had to create them, fills them from the events already stored. Every
	// process that appends to the file must open it with the same inline
	// projections, or its appends would miss them.
	Inline []Projection
	// Observer, when set, learns of every append (esgo.dev/es/esprom has
	// one for Prometheus).
	Observer es.StoreObserver
	// Logger receives the rare events worth a line, such as an append
	// retried because another process held the write lock (default
	// [slog.Default]).
	Logger *slog.Logger
}

// withDefaults fills in the zero fields, or says which field is invalid.
// Open calls it before it touches the file, so that a configuration that
// cannot work leaves nothing behind.
func (c Config) withDefaults() (Config, error) {
	if err := validateInline(c.Inline); err != nil {
		return c, err
	}
	if c.BusyTimeout < 0 || c.PollInterval < 0 {
		return c, fmt.Errorf("sqlite: negative BusyTimeout or PollInterval: %w", es.ErrInvalidConfig)
	}
	if c.Synchronous != SyncFull && c.Synchronous != SyncNormal {
		return c, fmt.Errorf("sqlite: unknown Synchronous %d: %w", c.Synchronous, es.ErrInvalidConfig)
	}
	c.BusyTimeout = cmp.Or(c.BusyTimeout, 5*time.Second)
	c.PollInterval = cmp.Or(c.PollInterval, 200*time.Millisecond)
	if c.Clock == nil {
		c.Clock = es.SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

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
	cfg     Config
	path    string // the file's absolute path; "" in memory
	locker  *Locker
	writer  *sql.DB // exactly one connection: the in-process write queue
	readers *sql.DB
	keeper  *sql.Conn // in-memory mode only: keeps the database alive
	keepDB  *sql.DB
	stmts   statements

	notify *storekit.Broadcaster

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// Open opens (creating if needed) the event store in the SQLite file at
// path and creates its tables if they are missing. Several processes may
// open the same file, at the same time too. A configuration that cannot
// work (an invalid inline projection, a negative timeout) is refused with
// an error wrapping [es.ErrInvalidConfig] before the file is touched.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// A file: URI with an escaped path, so that a '?' or '#' in the name
	// cannot be read as parameters.
	name := (&url.URL{Scheme: "file", Path: abs}).String()
	return open(ctx, name, abs, cfg)
}

// OpenMemory opens an empty store held in memory, for tests and examples.
// It behaves like a file store (several connections on one database,
// the same SQL) but without WAL, and it vanishes on Close.
func OpenMemory(ctx context.Context, cfg Config) (*Store, error) {
	// The memdb VFS shares a database between the connections that open
	// the same name starting with '/', without shared-cache mode (and its
	// SQLITE_LOCKED errors). A random name keeps stores apart.
	return open(ctx, "file:/es-"+es.NewID(), "", cfg)
}

// open opens the database called name: the file at path, or a memory
// database when path is empty.
func open(ctx context.Context, name, path string, cfg Config) (_ *Store, err error) {
	file := path != ""
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: cfg, path: path, locker: NewLocker(path), closed: make(chan struct{})}
	s.notify = storekit.NewBroadcaster(s.watchFile)
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()

	params := url.Values{}
	params.Set("_busy_timeout", strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10))
	params.Set("_synchronous", cfg.Synchronous.pragma())
	if file {
		params.Set("_journal_mode", "WAL")
	} else {
		params.Set("vfs", "memdb")
	}
	if !file {
		s.keepDB, err = sql.Open("sqlite3", name+"?"+params.Encode())
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		if s.keeper, err = s.keepDB.Conn(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}

	wp := cloneValues(params)
	wp.Set("_txlock", "immediate")
	wp.Set("_foreign_keys", "1")
	if s.writer, err = sql.Open("sqlite3", name+"?"+wp.Encode()); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	// Opening the writer switches a new file to WAL, which takes a lock
	// another process may hold for a moment: retry like any busy call.
	if err := s.retryBusy(ctx, func() error { return s.writer.PingContext(ctx) }); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := s.withWriteTx(ctx, func(tx *sql.Tx) error { return migrate(ctx, tx) }); err != nil {
		return nil, fmt.Errorf("sqlite: create schema: %w", err)
	}
	if err := s.setupInline(ctx); err != nil {
		return nil, err
	}

	rp := cloneValues(params)
	rp.Del("_journal_mode") // set once by the writer; it is stored in the file
	rp.Set("_query_only", "1")
	if s.readers, err = sql.Open("sqlite3", name+"?"+rp.Encode()); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	s.readers.SetMaxOpenConns(n)
	s.readers.SetMaxIdleConns(n)

	if err := s.stmts.prepare(ctx, s.writer, s.readers); err != nil {
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
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
		s.notify.Close()
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
		s.cfg.Logger.DebugContext(ctx, "sqlite: database busy, retrying", "attempt", attempt, "err", err)
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

// Notify implements [es.Notifier]. Appends through this Store are
// signalled at once; appends by other processes on the same file are
// noticed by polling the highest position every poll interval (see
// [Config]), while at least one channel is live. The channel is closed
// when ctx is done or the store is closed.
func (s *Store) Notify(ctx context.Context) <-chan struct{} { return s.notify.Notify(ctx) }

// watchFile polls the file for appends of other processes until the
// returned function is called.
func (s *Store) watchFile() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		last, _ := s.maxPosition(ctx)
		tick := time.NewTicker(s.cfg.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.closed:
				return
			case <-tick.C:
			}
			// A failed poll (the store closing, a busy file) is retried at
			// the next tick.
			if pos, err := s.maxPosition(ctx); err == nil && pos != last {
				last = pos
				s.notify.Broadcast()
			}
		}
	}()
	return cancel
}

func (s *Store) maxPosition(ctx context.Context) (int64, error) {
	var pos int64
	err := s.retryBusy(ctx, func() error {
		return s.stmts.maxPosition.QueryRowContext(ctx).Scan(&pos)
	})
	return pos, err
}
