package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"esgo.dev/es"
)

// rebuildBatch is how many events a rebuild applies per transaction:
// large enough that the commits cost little, small enough that appends
// wait for the write lock only briefly.
const rebuildBatch = 500

// errRebuildDone reports that another rebuild of the projection swapped
// its tables in first.
var errRebuildDone = errors.New("rebuild finished elsewhere")

// Rebuild rebuilds p's tables from every stored event while the old tables
// keep serving reads and the projection keeps running: its consumer (see
// [Store.Consumer]) or, for an inline projection, every append.
//
// It creates fresh tables under temporary names (Setup), replays the
// events from position 0 into them in batches, each committed with the
// rebuild's own checkpoint (in es_rebuilds), and when it has caught up,
// one IMMEDIATE transaction applies the last events, drops the old tables,
// renames the fresh ones into place and sets p's checkpoint to the last
// event applied. Readers see the old tables or the new ones, never a
// half-built one. The live consumer re-reads its checkpoint inside each
// transaction, so after the swap it skips what the rebuild applied and
// carries on.
//
// A rebuild interrupted (a crash, ctx cancelled) resumes where it was at
// the next Rebuild of the same projection, with the tables it had created.
// Two rebuilds of one projection at once are safe: both apply each batch
// at most once, and the first to finish swaps.
func (s *Store) Rebuild(ctx context.Context, p Projection) error {
	if err := p.validate(); err != nil {
		return err
	}
	log := s.cfg.Logger.With("projection", p.Name)
	suffix, pos, err := s.startRebuild(ctx, p)
	if err != nil {
		return fmt.Errorf("sqlite: rebuild %s: %w", p.Name, err)
	}
	log.InfoContext(ctx, "sqlite: rebuild started", "suffix", suffix, "from", pos)
	t := rebuildTables(p, suffix)
	for {
		batch, err := es.Collect(s.ReadAll(ctx, es.AllQuery{After: pos, Limit: rebuildBatch}))
		if err != nil {
			return fmt.Errorf("sqlite: rebuild %s: %w", p.Name, err)
		}
		if len(batch) < rebuildBatch {
			// Nearly caught up: the swap applies the rest under the
			// write lock, so that nothing is appended in between.
			break
		}
		err = s.withWriteTx(ctx, func(tx *sql.Tx) error {
			cur, err := rebuildPositionTx(ctx, tx, p.Name, suffix)
			if err != nil {
				return err
			}
			// Another rebuild of the projection may have gone ahead.
			i, _ := slices.BinarySearchFunc(batch, cur+1, func(e es.Event, pos int64) int { return compareInt(e.Position, pos) })
			if err := applyTx(ctx, tx, p, t, batch[i:]); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `UPDATE es_rebuilds SET position = ?, updated_at = ? WHERE name = ? AND position < ?`,
				batch[len(batch)-1].Position, s.now(), p.Name, batch[len(batch)-1].Position)
			return err
		})
		if errors.Is(err, errRebuildDone) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sqlite: rebuild %s: %w", p.Name, err)
		}
		pos = batch[len(batch)-1].Position
	}

	var last int64
	err = s.withWriteTx(ctx, func(tx *sql.Tx) error {
		cur, err := rebuildPositionTx(ctx, tx, p.Name, suffix)
		if err != nil {
			return err
		}
		if last, err = catchUpTx(ctx, tx, p, t, cur); err != nil {
			return err
		}
		// Tables of one projection may reference each other: check
		// foreign keys at the commit, when both sets are in place.
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return err
		}
		for _, logical := range slices.Backward(p.Tables) {
			if _, err := tx.ExecContext(ctx, `DROP TABLE IF EXISTS `+quoteIdent(logical)); err != nil {
				return fmt.Errorf("drop old table %s: %w", logical, err)
			}
		}
		if err := renameTables(ctx, tx, p, t); err != nil {
			return err
		}
		if !s.isInline(p.Name) {
			if err := saveCheckpointTx(ctx, tx, p.Name, last, s.cfg.Clock.Now()); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM es_rebuilds WHERE name = ?`, p.Name)
		return err
	})
	if errors.Is(err, errRebuildDone) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite: rebuild %s: swap: %w", p.Name, err)
	}
	log.InfoContext(ctx, "sqlite: rebuild swapped in", "position", last)
	return nil
}

// startRebuild resumes the rebuild of p in progress or starts one: it
// records a new suffix and creates the fresh tables. It returns the suffix
// and the position the rebuild has reached.
func (s *Store) startRebuild(ctx context.Context, p Projection) (suffix string, pos int64, err error) {
	err = s.withWriteTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT suffix, position FROM es_rebuilds WHERE name = ?`, p.Name).Scan(&suffix, &pos)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// A suffix of its own for every rebuild: the fresh tables' index
		// names (see Tables.Index) stay on the tables after the swap, so
		// the next rebuild must not reuse them.
		suffix, pos = newSuffix(), 0
		if _, err := tx.ExecContext(ctx, `INSERT INTO es_rebuilds (name, suffix, position, updated_at) VALUES (?, ?, 0, ?)`,
			p.Name, suffix, s.now()); err != nil {
			return err
		}
		return setupTx(ctx, tx, p, rebuildTables(p, suffix))
	})
	return suffix, pos, err
}

// suffixLen is the length of a rebuild's suffix: hexadecimal digits.
const suffixLen = 8

// newSuffix returns a random suffix for a rebuild's tables.
func newSuffix() string { return fmt.Sprintf("%0*x", suffixLen, rand.Uint32()) }

// isSuffix reports whether s is a suffix newSuffix could have made.
func isSuffix(s string) bool {
	if len(s) != suffixLen {
		return false
	}
	for _, c := range []byte(s) {
		if !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// rebuildPositionTx returns how far the rebuild of name with suffix has
// got, or errRebuildDone when it is no longer in progress.
func rebuildPositionTx(ctx context.Context, tx *sql.Tx, name, suffix string) (int64, error) {
	var cur int64
	var curSuffix string
	err := tx.QueryRowContext(ctx, `SELECT suffix, position FROM es_rebuilds WHERE name = ?`, name).Scan(&curSuffix, &cur)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, errRebuildDone
	case err != nil:
		return 0, err
	case curSuffix != suffix:
		// Finished and started anew meanwhile: this one is done.
		return 0, errRebuildDone
	}
	return cur, nil
}

func (s *Store) isInline(name string) bool {
	return slices.ContainsFunc(s.cfg.Inline, func(p Projection) bool { return p.Name == name })
}

func (s *Store) now() string { return s.cfg.Clock.Now().UTC().Format(timeLayout) }

// renameTables renames the fresh tables t to p's logical names. It renames
// in legacy mode: the modern ALTER TABLE RENAME checks every view and
// trigger of the schema, and a view over the projection's tables (dropped
// a moment ago) would fail it; the legacy one leaves views alone, and with
// foreign keys on it still repoints references between the fresh tables.
func renameTables(ctx context.Context, tx *sql.Tx, p Projection, t Tables) error {
	if _, err := tx.ExecContext(ctx, `PRAGMA legacy_alter_table = ON`); err != nil {
		return err
	}
	var err error
	for _, logical := range p.Tables {
		if _, err = tx.ExecContext(ctx, `ALTER TABLE `+t.Name(logical)+` RENAME TO `+quoteIdent(logical)); err != nil {
			err = fmt.Errorf("rename fresh table %s: %w", logical, err)
			break
		}
	}
	// The setting belongs to the writer connection, which outlives tx.
	if _, rerr := tx.ExecContext(ctx, `PRAGMA legacy_alter_table = OFF`); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}
