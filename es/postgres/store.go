package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// DefaultSchema is the schema a [Store] uses unless [Config] says otherwise.
const DefaultSchema = "es"

// ErrNotFirstWrite reports an [Store.AppendTx] into a transaction that had
// already written something (and so already had a transaction ID) before
// the events. The no-skip guarantee of [Store.ReadAll] depends on the
// transaction ID being assigned together with the events' positions; see
// the package documentation.
var ErrNotFirstWrite = errors.New("postgres: events must be the first write of their transaction")

// ErrNotReadCommitted reports an [Store.AppendTx] into a transaction whose
// isolation level is not READ COMMITTED. Appends wait for each other's
// stream locks and then read what the other committed; under REPEATABLE
// READ or SERIALIZABLE that read would fail with a serialization error
// instead. Nothing is written.
var ErrNotReadCommitted = errors.New("postgres: appends need a READ COMMITTED transaction")

// Store is a PostgreSQL event store, safe for concurrent use. Create it with
// [New] and create its tables once with [Store.Migrate].
type Store struct {
	pool     *pgxpool.Pool
	schema   string
	clock    es.Clock
	observer es.StoreObserver
	logger   *slog.Logger

	// Quoted, schema-qualified names, computed once.
	events, streams, checkpoints, positionSeq string
	outbox, inbox, outboxSeq, snapshots       string
	// reserveKey is the advisory lock that orders transaction IDs and
	// positions (see reservePositions).
	reserveKey int64
	// enqueuerKey is the writer lock: the advisory lock that every
	// appending or enqueuing transaction holds, shared, from before it has
	// an ID until it ends (see horizonCTE).
	enqueuerKey int64

	// inline projections, applied in every append; their tables are
	// created once (inlineReady).
	inline      []Projection
	inlineMu    sync.Mutex
	inlineReady atomic.Bool

	// schemaOK is set once the schema is known not to be newer than this
	// release (see checkSchema); schemaMu serialises the check and guards
	// schemaErr, the refusal of a newer schema, which is final.
	schemaOK  atomic.Bool
	schemaMu  sync.Mutex
	schemaErr error

	// hooks lets tests stop an append at known points; nil in production.
	hooks *testHooks

	notify    *storekit.Broadcaster
	listeners sync.WaitGroup // the LISTEN goroutines Notify started
}

// testHooks are called, when set, at points of an append that tests need
// to hold or break: after the positions are reserved and before commit.
type testHooks struct {
	afterReserve func(ctx context.Context, tx pgx.Tx) error
	beforeCommit func(ctx context.Context, tx pgx.Tx) error
}

// Config configures a [Store]. The zero value is a working configuration:
// each field says its default.
type Config struct {
	// Schema holds the store's tables (default [DefaultSchema]). Several
	// stores can share a database in different schemas. The name is also
	// the LISTEN/NOTIFY channel of [Store.Notify].
	Schema string
	// Clock stamps RecordedAt and the outbox's and inbox's bookkeeping
	// times (default [es.SystemClock]).
	Clock es.Clock
	// Inline are projections applied inside every append's transaction
	// ([Store.Append] and [Store.AppendTx]), after the events are written,
	// with their versions and positions assigned: a read that follows a
	// successful append sees its effect. An Apply error fails the append
	// and nothing is written. Inline projections apply events in commit
	// order, which across streams need not be position order.
	// [Store.Migrate] creates their tables (the first append does too, if
	// this process did not migrate).
	Inline []Projection
	// Observer, when set, learns of every append (esgo.dev/es/esprom has
	// one for Prometheus).
	Observer es.StoreObserver
	// Logger receives background trouble: the LISTEN connection of
	// [Store.Notify] logs when it drops and reconnects (default
	// [slog.Default]).
	Logger *slog.Logger
}

// New returns a store that works through pool. It does not touch the
// database: call [Store.Migrate] (or [Migrate]) once to create the tables.
// A configuration that cannot work (a bad schema name, an invalid inline
// projection) is refused with an error wrapping [es.ErrInvalidConfig].
// The caller keeps ownership of pool and closes it after [Store.Close].
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("postgres: nil pool: %w", es.ErrInvalidConfig)
	}
	if err := checkSchemaName(cmp.Or(cfg.Schema, DefaultSchema)); err != nil {
		return nil, err
	}
	if err := checkInline(cfg.Inline); err != nil {
		return nil, err
	}
	s := &Store{
		pool:     pool,
		schema:   cmp.Or(cfg.Schema, DefaultSchema),
		clock:    cfg.Clock,
		observer: cfg.Observer,
		logger:   cfg.Logger,
		inline:   slices.Clone(cfg.Inline),
	}
	if s.clock == nil {
		s.clock = es.SystemClock{}
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	s.notify = storekit.NewBroadcaster(s.watchNotifications)
	s.events = pgx.Identifier{s.schema, "events"}.Sanitize()
	s.streams = pgx.Identifier{s.schema, "streams"}.Sanitize()
	s.checkpoints = pgx.Identifier{s.schema, "checkpoints"}.Sanitize()
	s.positionSeq = pgx.Identifier{s.schema, "events_position_seq"}.Sanitize()
	s.outbox = pgx.Identifier{s.schema, "outbox"}.Sanitize()
	s.snapshots = pgx.Identifier{s.schema, "snapshots"}.Sanitize()
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
	if schema == "" || len(schema) > 63 || !utf8.ValidString(schema) || strings.ContainsRune(schema, 0) {
		return fmt.Errorf("postgres: schema name %q must be 1 to 63 bytes of UTF-8 without NUL: %w", schema, es.ErrInvalidConfig)
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
	s.notify.Close()
	s.listeners.Wait()
	return nil
}

var _ es.Store = (*Store)(nil)
var _ es.Notifier = (*Store)(nil)
