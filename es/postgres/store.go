package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
)

// DefaultSchema is the schema a [Store] uses unless [WithSchema] says otherwise.
const DefaultSchema = "es"

// ErrNotFirstWrite reports an [Store.AppendTx] into a transaction that had
// already written something (and so already had a transaction ID) before
// the events. The no-skip guarantee of [Store.ReadAll] depends on the
// transaction ID being assigned together with the events' positions; see
// the package documentation.
var ErrNotFirstWrite = errors.New("postgres: events must be the first write of their transaction")

// Store is a PostgreSQL event store, safe for concurrent use. Create it with
// [New] and create its tables once with [Store.Migrate].
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	clock   es.Clock
	metrics *es.StoreMetrics
	logger  *slog.Logger

	// Quoted, schema-qualified names, computed once.
	events, streams, checkpoints, positionSeq string
	outbox, inbox, outboxSeq                  string
	// reserveKey is the advisory lock that orders transaction IDs and
	// positions (see reservePositions).
	reserveKey int64
	// enqueuerKey is the advisory lock that every enqueuing transaction
	// holds, shared, from before it has an ID until it ends (see Due).
	enqueuerKey int64

	// inline projections, applied in every append; their tables are
	// created once (inlineReady).
	inline      []Projection
	inlineMu    sync.Mutex
	inlineReady atomic.Bool

	// hooks lets tests stop an append at known points; nil in production.
	hooks *testHooks

	mu         sync.Mutex
	closed     bool
	waiters    map[chan struct{}]struct{}
	stopListen context.CancelFunc // of the running listener, if any
	listeners  sync.WaitGroup
}

// testHooks are called, when set, at points of an append that tests need
// to hold or break: after the positions are reserved and before commit.
type testHooks struct {
	afterReserve func(ctx context.Context, tx pgx.Tx) error
	beforeCommit func(ctx context.Context, tx pgx.Tx) error
}

// Option configures a [Store].
type Option func(*Store)

// WithSchema puts the store's tables in schema (default [DefaultSchema]).
// Several stores can share a database in different schemas. The name is
// also the LISTEN/NOTIFY channel of [Store.Notify].
func WithSchema(schema string) Option { return func(s *Store) { s.schema = schema } }

// WithClock sets the clock that stamps RecordedAt (default [es.SystemClock]).
func WithClock(c es.Clock) Option { return func(s *Store) { s.clock = c } }

// WithMetrics reports appends to m.
func WithMetrics(m *es.StoreMetrics) Option { return func(s *Store) { s.metrics = m } }

// WithLogger sets the logger for background work: the LISTEN connection
// of [Store.Notify] logs when it drops and reconnects. Default: slog.Default().
func WithLogger(l *slog.Logger) Option { return func(s *Store) { s.logger = l } }

// New returns a store that works through pool. It does not touch the
// database: call [Store.Migrate] (or [Migrate]) once to create the tables.
// The caller keeps ownership of pool and closes it after [Store.Close].
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	if pool == nil {
		return nil, errors.New("postgres: nil pool")
	}
	s := &Store{
		pool:    pool,
		schema:  DefaultSchema,
		clock:   es.SystemClock{},
		logger:  slog.Default(),
		waiters: make(map[chan struct{}]struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	if err := checkSchemaName(s.schema); err != nil {
		return nil, err
	}
	s.events = pgx.Identifier{s.schema, "events"}.Sanitize()
	s.streams = pgx.Identifier{s.schema, "streams"}.Sanitize()
	s.checkpoints = pgx.Identifier{s.schema, "checkpoints"}.Sanitize()
	s.positionSeq = pgx.Identifier{s.schema, "events_position_seq"}.Sanitize()
	s.outbox = pgx.Identifier{s.schema, "outbox"}.Sanitize()
	s.inbox = pgx.Identifier{s.schema, "inbox"}.Sanitize()
	s.outboxSeq = pgx.Identifier{s.schema, "outbox_seq"}.Sanitize()
	s.reserveKey = lockKey("reserve", s.schema)
	s.enqueuerKey = lockKey("enqueuer", s.schema)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// checkSchemaName rejects names PostgreSQL would truncate: the schema name
// is also a NOTIFY channel name, and both are limited to 63 bytes.
func checkSchemaName(schema string) error {
	if schema == "" || len(schema) > 63 {
		return fmt.Errorf("postgres: schema name %q must be 1 to 63 bytes long", schema)
	}
	return nil
}

// lockKey derives an advisory lock key from a purpose and a schema, so
// that stores in different schemas never wait for each other.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("esgo.dev/es/postgres\x00" + purpose + "\x00" + schema))
	return int64(h.Sum64())
}

// Schema returns the name of the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Pool returns the pool the store works through.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close stops the LISTEN connection of [Store.Notify], if one is open, and
// closes every channel Notify returned. It does not close the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.stopListen != nil {
		s.stopListen()
		s.stopListen = nil
	}
	for ch := range s.waiters {
		delete(s.waiters, ch)
		close(ch)
	}
	s.mu.Unlock()
	s.listeners.Wait()
	return nil
}

var _ es.Store = (*Store)(nil)
var _ es.Notifier = (*Store)(nil)
