package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// Projection is a read model kept in SQL tables of the store's database.
// Run it asynchronously with [Store.Consumer] and an [es.Subscription], or
// inline in every append ([Config].Inline); rebuild it from position 0
// with [Store.Rebuild].
//
// Apply must refer to its tables only through the [Tables] it is given,
// never by literal names: during a rebuild the same Apply writes fresh
// tables elsewhere. Apply sees every event of the store during a rebuild,
// whatever filter the live subscription uses, so it must ignore events it
// does not project.
//
// A read model that should also run on SQLite is written once as an
// esgo.dev/es/sqlprojection.Projection and adapted by [FromPortable].
type Projection struct {
	// Name names the projection's checkpoint (in the checkpoints table)
	// and its locks. It must be unique within the store.
	Name string
	// Tables are the logical names of the tables the projection owns.
	// Rebuild builds and swaps exactly these; Setup must create them all.
	Tables []string
	// Setup creates the tables and their indexes if they do not exist,
	// under the names t gives. It must be idempotent (CREATE TABLE IF NOT
	// EXISTS, CREATE INDEX IF NOT EXISTS) and must not write rows: the
	// store runs it in a transaction of its own before the projection
	// applies its first event (a consumer when it starts, a store its
	// inline projections when it opens, migrates or first appends, and
	// SetupProjection on request), and again on the fresh, empty tables
	// of every rebuild. A table or index added to Setup later is created
	// at the next start; a change to an existing table is a Rebuild, not
	// an edit of live tables.
	Setup func(ctx context.Context, tx pgx.Tx, t Tables) error
	// Apply projects one event, inside the transaction that records the
	// projection's progress (or, inline, the append's transaction).
	Apply func(ctx context.Context, tx pgx.Tx, t Tables, e es.Event) error
	// ApplyBatch, set instead of Apply, projects a batch of events, in
	// order: a projection that folds a batch into a few statements (one
	// multi-row upsert) catches up faster than one statement per event.
	// The batch commits with the checkpoint just as single events do;
	// inline, it is the append's events.
	ApplyBatch func(ctx context.Context, tx pgx.Tx, t Tables, events []es.Event) error
}

// Tables names the physical tables a projection's Setup and Apply work
// on: the live ones, or during [Store.Rebuild] their replacements.
type Tables struct {
	schema string
}

// Name returns the quoted, schema-qualified identifier of the logical
// table, ready to put into SQL. Only tables listed in [Projection.Tables]
// survive a rebuild.
func (t Tables) Name(logical string) string { return pgx.Identifier{t.schema, logical}.Sanitize() }

// Schema returns the (unquoted) schema the tables are in. Index names are
// per schema, so Setup can give indexes fixed names: a rebuild builds its
// tables in a schema of its own and moves them into place.
func (t Tables) Schema() string { return t.schema }

// Index returns the quoted name "<table>__<index>" for the index called
// index on the logical table, ready to put into CREATE INDEX (which
// creates it in the table's schema). Fixed names would do here (see
// [Tables.Schema]), but SQLite needs Index, and with it a projection's
// Setup runs unchanged on both stores; the table's name in front keeps
// indexes of different tables apart.
func (t Tables) Index(table, index string) string {
	return pgx.Identifier{table + "__" + index}.Sanitize()
}

// check validates what a projection needs to work. Errors wrap
// [es.ErrInvalidConfig].
func (p Projection) check() error {
	switch {
	case p.Name == "":
		return fmt.Errorf("%w: postgres: projection without a name", es.ErrInvalidConfig)
	case p.Setup == nil || (p.Apply == nil) == (p.ApplyBatch == nil):
		return fmt.Errorf("%w: postgres: projection %s: Setup and one of Apply and ApplyBatch are required", es.ErrInvalidConfig, p.Name)
	}
	for _, t := range p.Tables {
		if t == "" || len(t) > 63 {
			return fmt.Errorf("%w: postgres: projection %s: table name %q must be 1 to 63 bytes long", es.ErrInvalidConfig, p.Name, t)
		}
	}
	return nil
}

// checkInline validates the inline projections of a [Config]: each valid,
// no name twice (the name keys the projection's locks). Errors wrap
// [es.ErrInvalidConfig].
func checkInline(inline []Projection) error {
	names := make(map[string]bool, len(inline))
	for _, p := range inline {
		if err := p.check(); err != nil {
			return err
		}
		if names[p.Name] {
			return fmt.Errorf("%w: postgres: inline projection %s given twice", es.ErrInvalidConfig, p.Name)
		}
		names[p.Name] = true
	}
	return nil
}

// setupProjection runs p.Setup on tables in schema in a transaction of
// its own, under an advisory lock: CREATE ... IF NOT EXISTS from two
// sessions at once can still fail on the catalog's unique indexes.
func (s *Store) setupProjection(ctx context.Context, p Projection, schema string) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("setup\x00"+p.Name, s.schema)); err != nil {
			return err
		}
		return p.Setup(ctx, tx, Tables{schema: schema})
	})
	if err != nil {
		return fmt.Errorf("postgres: projection %s: setup: %w", p.Name, err)
	}
	return nil
}

// SetupProjection runs p's Setup on its live tables, in a transaction of
// its own, so that readers can query them before the projection's
// consumer has started. The consumer and [Config].Inline run Setup
// themselves; calling it is optional.
func (s *Store) SetupProjection(ctx context.Context, p Projection) error {
	if err := p.check(); err != nil {
		return err
	}
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	return s.setupProjection(ctx, p, s.schema)
}

// LoadCheckpoint implements [es.CheckpointStore].
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	if err := storekit.CheckName("checkpoint name", name); err != nil {
		return 0, fmt.Errorf("postgres: load checkpoint: %w", err)
	}
	if err := s.checkSchema(ctx); err != nil {
		return 0, err
	}
	var pos int64
	err := s.pool.QueryRow(ctx, `SELECT position FROM `+s.checkpoints+` WHERE name = $1`, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: load checkpoint %s: %w", name, withCtx(ctx, err))
	}
	return pos, nil
}

// SaveCheckpoint implements [es.CheckpointStore].
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	if err := storekit.CheckName("checkpoint name", name); err != nil {
		return fmt.Errorf("postgres: save checkpoint: %w", err)
	}
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.checkpoints+` (name, position) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()`, name, position)
	if err != nil {
		return fmt.Errorf("postgres: save checkpoint %s: %w", name, withCtx(ctx, err))
	}
	return nil
}

// Head implements [es.HeadReader]: the highest position that
// [Store.ReadAll] yields now, 0 when there is none. Like ReadAll it leaves
// out the events of appends still in flight and of those that got their
// IDs after the oldest one in flight, so every event up to the head can be
// read: a subscription that read past it has seen all of them.
func (s *Store) Head(ctx context.Context) (int64, error) {
	if err := s.checkSchema(ctx); err != nil {
		return 0, err
	}
	var head int64
	if err := s.pool.QueryRow(ctx, s.horizon()+`SELECT coalesce(max(position), 0) FROM `+s.events+
		` WHERE tx_id < (SELECT h FROM horizon)`).Scan(&head); err != nil {
		return 0, fmt.Errorf("postgres: head: %w", withCtx(ctx, err))
	}
	return head, nil
}

// Consumer returns an [es.Consumer] that keeps p up to date: feed it with
// an [es.Subscription] (named as you like; the checkpoint is p.Name).
// Each Handle is one transaction that locks p's checkpoint row, applies the
// events after it, moves it, and commits: a crash loses both the changes
// and the checkpoint move, or neither. Because of the row lock, two
// consumers of the same projection (two processes without a lease, or a
// consumer racing [Store.Rebuild]'s swap) take turns and never apply an
// event twice. It runs p's Setup, in a transaction of its own, on its
// first Checkpoint or Handle.
func (s *Store) Consumer(p Projection) es.Consumer {
	return &consumer{s: s, p: p}
}

type consumer struct {
	s *Store
	p Projection

	mu    sync.Mutex
	ready bool
}

// setup runs Setup once per consumer; a failure is retried next time.
func (c *consumer) setup(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	if err := c.p.check(); err != nil {
		return err
	}
	if err := c.s.checkSchema(ctx); err != nil {
		return err
	}
	if err := c.s.setupProjection(ctx, c.p, c.s.schema); err != nil {
		return err
	}
	c.ready = true
	return nil
}

func (c *consumer) Checkpoint(ctx context.Context) (int64, error) {
	if err := c.setup(ctx); err != nil {
		return 0, err
	}
	return c.s.LoadCheckpoint(ctx, c.p.Name)
}

func (c *consumer) Handle(ctx context.Context, batch []es.Event) error {
	if err := c.setup(ctx); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, c.s.pool, func(tx pgx.Tx) error {
		cp, err := lockCheckpoint(ctx, tx, c.s.checkpoints, c.p.Name)
		if err != nil {
			return err
		}
		last, err := applyAfter(ctx, tx, c.p, Tables{schema: c.s.schema}, cp, batch)
		if err != nil || last == cp {
			return err
		}
		return setCheckpoint(ctx, tx, c.s.checkpoints, c.p.Name, last)
	})
	if err != nil {
		return fmt.Errorf("postgres: projection %s: %w", c.p.Name, withCtx(ctx, err))
	}
	return nil
}

// lockCheckpoint returns the checkpoint called name in table, locked
// until tx ends, creating it at 0 if it is missing.
func lockCheckpoint(ctx context.Context, tx pgx.Tx, table, name string) (int64, error) {
	// INSERT first, so that a missing row can be locked too; it waits for
	// a concurrent creator to finish.
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	var cp int64
	if err := tx.QueryRow(ctx, `SELECT position FROM `+table+` WHERE name = $1 FOR UPDATE`, name).Scan(&cp); err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	return cp, nil
}

func setCheckpoint(ctx context.Context, tx pgx.Tx, table, name string, position int64) error {
	if _, err := tx.Exec(ctx, `UPDATE `+table+` SET position = $2, updated_at = now() WHERE name = $1`, name, position); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// applyAfter applies the events of batch beyond checkpoint cp and returns
// the new checkpoint. The checkpoint never moves back: whoever moved it
// past part of the batch has applied those events already.
func applyAfter(ctx context.Context, tx pgx.Tx, p Projection, t Tables, cp int64, batch []es.Event) (int64, error) {
	if p.ApplyBatch != nil {
		i := slices.IndexFunc(batch, func(e es.Event) bool { return e.Position > cp })
		if i < 0 {
			return cp, nil
		}
		if err := p.ApplyBatch(ctx, tx, t, batch[i:]); err != nil {
			return 0, fmt.Errorf("apply the events at positions %d to %d: %w", batch[i].Position, batch[len(batch)-1].Position, err)
		}
		return max(cp, batch[len(batch)-1].Position), nil
	}
	for _, e := range batch {
		if e.Position <= cp {
			continue
		}
		if err := p.Apply(ctx, tx, t, e); err != nil {
			return 0, fmt.Errorf("apply event %s (%s, stream %s, position %d): %w", e.ID, e.Type, e.StreamID, e.Position, err)
		}
		cp = e.Position
	}
	return cp, nil
}

// setupInline creates the inline projections' tables once per store.
func (s *Store) setupInline(ctx context.Context) error {
	if len(s.inline) == 0 || s.inlineReady.Load() {
		return nil
	}
	s.inlineMu.Lock()
	defer s.inlineMu.Unlock()
	if s.inlineReady.Load() {
		return nil
	}
	for _, p := range s.inline {
		if err := p.check(); err != nil {
			return err
		}
		if err := s.setupProjection(ctx, p, s.schema); err != nil {
			return err
		}
	}
	s.inlineReady.Store(true)
	return nil
}

// applyInline runs the inline projections on the events just inserted by
// appendTx. Each projection first takes its advisory lock in shared mode:
// [Store.Rebuild] takes it exclusively to swap the tables, so it waits
// for appends that are applying and holds off new ones meanwhile.
func (s *Store) applyInline(ctx context.Context, tx pgx.Tx, events []es.Event) error {
	keys := make([]int64, len(s.inline))
	for i, p := range s.inline {
		keys[i] = projectionKey(p.Name, s.schema)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared(k) FROM unnest($1::bigint[]) AS u(k)`, keys); err != nil {
		return fmt.Errorf("postgres: inline projections: %w", err)
	}
	t := Tables{schema: s.schema}
	for _, p := range s.inline {
		if p.ApplyBatch != nil {
			if err := p.ApplyBatch(ctx, tx, t, events); err != nil {
				return fmt.Errorf("postgres: inline projection %s: %w", p.Name, err)
			}
			continue
		}
		for _, e := range events {
			if err := p.Apply(ctx, tx, t, e); err != nil {
				return fmt.Errorf("postgres: inline projection %s: event %s (%s, stream %s): %w", p.Name, e.ID, e.Type, e.StreamID, err)
			}
		}
	}
	return nil
}

func projectionKey(name, schema string) int64 { return lockKey("projection\x00"+name, schema) }

func (s *Store) isInline(name string) bool {
	return slices.ContainsFunc(s.inline, func(p Projection) bool { return p.Name == name })
}

// rebuildSchema is where a rebuild of the named projection builds its
// tables: a schema of its own, so that the tables and their indexes keep
// their names, and a short one, whatever the lengths of the names.
func rebuildSchema(schema, name string) string {
	return "es_rebuild_" + strconv.FormatUint(uint64(lockKey("rebuild\x00"+name, schema)), 16)
}
