package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// Projection is a read model kept in SQL tables of the store's file. The
// same Projection runs asynchronously (see [Store.Consumer]), inline in the
// append transaction (see [Config].Inline), and is rebuilt from scratch by
// [Store.Rebuild]. A read model that should also run on PostgreSQL is
// written once as an esgo.dev/es/sqlprojection.Projection and adapted by
// [FromPortable].
//
// Apply must be deterministic, a function of the tables and the event
// only: a rebuild replays every event and must arrive where the live
// tables are. It receives events as stored; decode them with an
// [es.Registry] (which upcasts old schema versions).
type Projection struct {
	// Name identifies the projection: it names its checkpoint in
	// es_checkpoints and the lease an exclusive subscription takes.
	Name string
	// Tables are the logical names of the tables the projection owns.
	// Rebuild builds fresh copies of exactly these and swaps them in.
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
	Setup func(ctx context.Context, tx *sql.Tx, t Tables) error
	// Apply applies one event to the tables named by t.
	Apply func(ctx context.Context, tx *sql.Tx, t Tables, e es.Event) error
	// ApplyBatch, set instead of Apply, applies a batch of events, in
	// order, to the tables named by t: a projection that folds a batch
	// into a few statements (one multi-row upsert) catches up faster than
	// one statement per event. The batch commits with the checkpoint
	// just as single events do; inline, it is the append's events.
	ApplyBatch func(ctx context.Context, tx *sql.Tx, t Tables, events []es.Event) error
}

// validate checks what a projection needs to work. Errors wrap
// [es.ErrInvalidConfig].
func (p Projection) validate() error {
	if err := p.check(); err != nil {
		return fmt.Errorf("%w: %v", es.ErrInvalidConfig, err)
	}
	return nil
}

func (p Projection) check() error {
	if p.Name == "" {
		return errors.New("sqlite: projection has no name")
	}
	if p.Setup == nil || (p.Apply == nil) == (p.ApplyBatch == nil) {
		return fmt.Errorf("sqlite: projection %s: Setup and one of Apply and ApplyBatch are required", p.Name)
	}
	if len(p.Tables) == 0 {
		return fmt.Errorf("sqlite: projection %s owns no tables", p.Name)
	}
	seen := map[string]bool{}
	for _, t := range p.Tables {
		k := strings.ToLower(t) // SQLite's identifiers ignore ASCII case
		if t == "" || strings.ContainsRune(t, 0) || seen[k] {
			return fmt.Errorf("sqlite: projection %s: table name %q is empty, has a NUL or is repeated", p.Name, t)
		}
		if strings.HasPrefix(k, "es_") || strings.HasPrefix(k, "sqlite_") {
			return fmt.Errorf("sqlite: projection %s: table name %q is reserved", p.Name, t)
		}
		seen[k] = true
	}
	return nil
}

// validateInline checks the inline projections of a [Config]: each valid,
// no name twice. Errors wrap [es.ErrInvalidConfig].
func validateInline(inline []Projection) error {
	names := map[string]bool{}
	for _, p := range inline {
		if err := p.validate(); err != nil {
			return err
		}
		if names[p.Name] {
			return fmt.Errorf("%w: sqlite: inline projection %s given twice", es.ErrInvalidConfig, p.Name)
		}
		names[p.Name] = true
	}
	return nil
}

// Tables maps a projection's logical table names to the physical tables in
// use: the live tables, or the fresh ones a rebuild fills. SQL in Setup and
// Apply must name tables through it.
type Tables struct {
	physical map[string]string
	// indexes maps a logical table and index name (see indexKey) to the
	// name of an index a rebuild created, now on the live table.
	indexes map[string]string
}

// liveTables names the tables readers see: the logical names themselves.
func liveTables(p Projection) Tables {
	m := make(map[string]string, len(p.Tables))
	for _, t := range p.Tables {
		m[t] = t
	}
	return Tables{physical: m}
}

// rebuildTables names a rebuild's fresh tables: the logical name with a
// suffix unique to the rebuild.
func rebuildTables(p Projection, suffix string) Tables {
	m := make(map[string]string, len(p.Tables))
	for _, t := range p.Tables {
		m[t] = t + "__rebuild_" + suffix
	}
	return Tables{physical: m}
}

// Name returns the quoted identifier of the physical table behind the
// logical name table, ready to put in SQL. A name the projection does not
// own is returned quoted as it is, for lookups in other tables.
func (t Tables) Name(table string) string {
	if p, ok := t.physical[table]; ok {
		return quoteIdent(p)
	}
	return quoteIdent(table)
}

// Index returns a quoted name for the index called index on the logical
// table. Index names share one namespace with tables in SQLite, so the
// fresh tables of a rebuild need index names of their own: derive them
// from the physical table name with Index rather than writing them out.
// A rebuild's indexes keep their names when its tables are swapped in
// (SQLite cannot rename an index), so in Setup on the live tables Index
// returns the name such an index has, and CREATE INDEX IF NOT EXISTS
// finds it instead of building a second one.
func (t Tables) Index(table, index string) string {
	if name, ok := t.indexes[indexKey(table, index)]; ok {
		return quoteIdent(name)
	}
	p, ok := t.physical[table]
	if !ok {
		p = table
	}
	return quoteIdent(p + "__" + index)
}

func indexKey(table, index string) string {
	return strings.ToLower(table) + "\x00" + strings.ToLower(index)
}

// liveTablesTx is liveTables with the names of the indexes that rebuilds
// left on the live tables (see [Tables.Index]): an index a rebuild
// created as "<table>__rebuild_<suffix>__<index>".
func liveTablesTx(ctx context.Context, tx *sql.Tx, p Projection) (Tables, error) {
	t := liveTables(p)
	for _, logical := range p.Tables {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM sqlite_schema
			WHERE type = 'index' AND tbl_name = ? COLLATE NOCASE`, logical)
		if err != nil {
			return t, fmt.Errorf("sqlite: projection %s: look up indexes of %s: %w", p.Name, logical, err)
		}
		var names []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return t, err
			}
			names = append(names, name)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return t, err
		}
		prefix := strings.ToLower(logical) + "__rebuild_"
		for _, name := range names {
			rest, ok := strings.CutPrefix(strings.ToLower(name), prefix)
			if !ok || len(rest) < suffixLen+2 || !isSuffix(rest[:suffixLen]) || rest[suffixLen:suffixLen+2] != "__" {
				continue
			}
			if t.indexes == nil {
				t.indexes = map[string]string{}
			}
			t.indexes[indexKey(logical, rest[suffixLen+2:])] = name
		}
	}
	return t, nil
}

// quoteIdent quotes an SQL identifier: wrapped in double quotes, with
// inner double quotes doubled, any string is one identifier.
func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// missingTx reports whether one of t's tables does not exist.
func missingTx(ctx context.Context, tx *sql.Tx, p Projection, t Tables) (bool, error) {
	for _, logical := range p.Tables {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema
			WHERE type = 'table' AND name = ? COLLATE NOCASE`, t.physical[logical]).Scan(&n)
		if err != nil {
			return false, fmt.Errorf("sqlite: projection %s: look up table %s: %w", p.Name, logical, err)
		}
		if n == 0 {
			return true, nil
		}
	}
	return false, nil
}

// setupTx runs p.Setup on t in tx.
func setupTx(ctx context.Context, tx *sql.Tx, p Projection, t Tables) error {
	if err := p.Setup(ctx, tx, t); err != nil {
		return fmt.Errorf("sqlite: projection %s: setup: %w", p.Name, err)
	}
	return nil
}

// setupLive runs p.Setup on the live tables in a transaction of its own.
// With fill, when one of the tables was missing, it also records that the
// tables are to be filled from the events stored before them (see
// [Store.setupInline]).
func (s *Store) setupLive(ctx context.Context, p Projection, fill bool) error {
	return s.withWriteTx(ctx, func(tx *sql.Tx) error {
		t, err := liveTablesTx(ctx, tx, p)
		if err != nil {
			return err
		}
		missing, err := missingTx(ctx, tx, p, t)
		if err != nil {
			return err
		}
		if err := setupTx(ctx, tx, p, t); err != nil {
			return err
		}
		if fill && missing {
			_, err = tx.ExecContext(ctx, `INSERT INTO es_inline_fills (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, p.Name)
		}
		return err
	})
}

// applyTx applies events to t in tx.
func applyTx(ctx context.Context, tx *sql.Tx, p Projection, t Tables, events []es.Event) error {
	if p.ApplyBatch != nil && len(events) > 0 {
		if err := p.ApplyBatch(ctx, tx, t, events); err != nil {
			first, last := events[0], events[len(events)-1]
			return fmt.Errorf("sqlite: projection %s: apply the events at positions %d to %d: %w", p.Name, first.Position, last.Position, err)
		}
		return nil
	}
	for _, e := range events {
		if err := p.Apply(ctx, tx, t, e); err != nil {
			return fmt.Errorf("sqlite: projection %s: apply event %s (%s, %s v%d, position %d): %w",
				p.Name, e.ID, e.Type, e.StreamID, e.Version, e.Position, err)
		}
	}
	return nil
}

// SetupProjection runs p's Setup on its live tables, in a transaction of
// its own, so that readers can query them before the projection's
// consumer has started. The consumer and [Config].Inline run Setup
// themselves; calling it is optional.
func (s *Store) SetupProjection(ctx context.Context, p Projection) error {
	if err := p.validate(); err != nil {
		return err
	}
	return s.setupLive(ctx, p, false)
}

// Consumer returns an [es.Consumer] that applies events to p's tables:
// feed it with an [es.Subscription] named p.Name (the checkpoint and the
// lease share the name). It runs p's Setup, in a transaction of its own,
// on its first Checkpoint or Handle.
//
// Each Handle call is one IMMEDIATE transaction on the writer connection
// that reads the checkpoint, applies the events after it, and saves the
// new checkpoint: the read model and its checkpoint commit together, so a
// crash neither loses an event nor applies one twice. Because the
// checkpoint is re-read inside the transaction, events at or below it are
// skipped: two instances running by mistake, or an instance racing a
// [Store.Rebuild] swap, never apply an event twice.
func (s *Store) Consumer(p Projection) es.Consumer {
	return &consumer{s: s, p: p, tables: liveTables(p)}
}

type consumer struct {
	s      *Store
	p      Projection
	tables Tables

	mu    sync.Mutex
	ready bool // Setup has run and committed
}

// setup runs Setup once per consumer; a failure is retried next time.
func (c *consumer) setup(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	if err := c.p.validate(); err != nil {
		return err
	}
	if err := c.s.setupLive(ctx, c.p, false); err != nil {
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
	if len(batch) == 0 {
		return nil
	}
	if err := c.setup(ctx); err != nil {
		return err
	}
	return c.s.withWriteTx(ctx, func(tx *sql.Tx) error {
		cp, err := checkpointTx(ctx, tx, c.p.Name)
		if err != nil {
			return err
		}
		i, _ := slices.BinarySearchFunc(batch, cp+1, func(e es.Event, pos int64) int { return compareInt(e.Position, pos) })
		if i == len(batch) {
			return nil // all handled already, by another instance or a rebuild
		}
		if err := applyTx(ctx, tx, c.p, c.tables, batch[i:]); err != nil {
			return err
		}
		return saveCheckpointTx(ctx, tx, c.p.Name, batch[len(batch)-1].Position, c.s.cfg.Clock.Now())
	})
}

func compareInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// setupInline runs the inline projections' Setup, each in a transaction
// of its own, then fills the tables that were missing from the stored
// events. Setup records the fill in es_inline_fills, and the fill
// removes the record in the transaction that applies the events, so
// that a fill interrupted by a crash is done by the next Open, and of
// two processes opening the file at once exactly one fills. Neither
// appends until its Open has returned, so no event reaches the new tables
// before the events stored before them.
//
// Open has validated the projections (Config.withDefaults).
func (s *Store) setupInline(ctx context.Context) error {
	for _, p := range s.cfg.Inline {
		if err := s.setupLive(ctx, p, true); err != nil {
			return err
		}
		err := s.withWriteTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM es_inline_fills WHERE name = ?`, p.Name)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err
			}
			_, err = catchUpTx(ctx, tx, p, liveTables(p), 0)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// applyInline runs the inline projections on events appended in tx.
func (s *Store) applyInline(ctx context.Context, tx *sql.Tx, events []es.Event) error {
	for _, p := range s.cfg.Inline {
		if err := applyTx(ctx, tx, p, liveTables(p), events); err != nil {
			return err
		}
	}
	return nil
}

// catchUpTx applies, within tx, every event after position to t, batchSize
// at a time, and returns the position of the last event (position if
// there were none).
func catchUpTx(ctx context.Context, tx *sql.Tx, p Projection, t Tables, position int64) (int64, error) {
	for {
		batch, err := readTx(ctx, tx, position, batchSize)
		if err != nil {
			return 0, fmt.Errorf("sqlite: projection %s: read events: %w", p.Name, err)
		}
		if len(batch) == 0 {
			return position, nil
		}
		if err := applyTx(ctx, tx, p, t, batch); err != nil {
			return 0, err
		}
		position = batch[len(batch)-1].Position
	}
}

// readTx reads up to limit events after position within tx. It reads all
// rows before returning, so the caller may write in tx.
func readTx(ctx context.Context, tx *sql.Tx, after int64, limit int) ([]es.Event, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM es_events
		WHERE position > ? ORDER BY position LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []es.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func checkpointTx(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	var pos int64
	err := tx.QueryRowContext(ctx, `SELECT position FROM es_checkpoints WHERE name = ?`, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: read checkpoint %s: %w", name, err)
	}
	return pos, nil
}

func saveCheckpointTx(ctx context.Context, tx *sql.Tx, name string, position int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO es_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
		name, position, now.UTC().Format(timeLayout))
	if err != nil {
		return fmt.Errorf("sqlite: save checkpoint %s: %w", name, err)
	}
	return nil
}

// LoadCheckpoint implements [es.CheckpointStore].
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	if err := storekit.CheckName("checkpoint name", name); err != nil {
		return 0, fmt.Errorf("sqlite: load checkpoint: %w", err)
	}
	var pos int64
	err := s.retryBusy(ctx, func() error {
		return s.readers.QueryRowContext(ctx, `SELECT position FROM es_checkpoints WHERE name = ?`, name).Scan(&pos)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: load checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// SaveCheckpoint implements [es.CheckpointStore].
func (s *Store) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	if err := storekit.CheckName("checkpoint name", name); err != nil {
		return fmt.Errorf("sqlite: save checkpoint: %w", err)
	}
	if position < 0 {
		return fmt.Errorf("sqlite: save checkpoint %s: negative position %d", name, position)
	}
	return s.withWriteTx(ctx, func(tx *sql.Tx) error {
		return saveCheckpointTx(ctx, tx, name, position, s.cfg.Clock.Now())
	})
}

// Head implements [es.HeadReader]: the position of the last event, 0 when
// there is none.
func (s *Store) Head(ctx context.Context) (int64, error) {
	pos, err := s.maxPosition(ctx)
	if err != nil {
		return 0, fmt.Errorf("sqlite: head: %w", err)
	}
	return pos, nil
}

// DB returns the store's pool of read-only connections, for querying
// projections' tables. Writes through it fail (query_only).
func (s *Store) DB() *sql.DB { return s.readers }
