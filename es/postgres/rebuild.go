package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
)

// rebuildBatch is how many events a rebuild applies per transaction.
const rebuildBatch = 1000

// Rebuild builds p's tables afresh from position 0 and swaps them in for
// the live ones, which keep serving (and, for an asynchronous projection,
// keep being updated by its consumer; for an inline one, by appends) until
// the swap.
//
// The new tables are built by p.Setup and p.Apply in a schema of the
// rebuild's own, in batches of events, each committed with the rebuild's
// checkpoint, so a rebuild interrupted by a crash or a cancelled context
// resumes where it stopped when called again. (To start over instead,
// drop that schema: [Store.RebuildSchema] names it.) Once the replay has
// caught up, one transaction:
//
//   - locks the projection against its other writers: the consumer's
//     checkpoint row (a consumer's Handle waits), or for an inline
//     projection an advisory lock that every append applying it shares;
//   - applies the events that the replay has not reached yet;
//   - drops the live tables, moves the new ones into their place, and,
//     for an asynchronous projection, sets its checkpoint to what the new
//     tables hold.
//
// Readers see the old tables or the new ones, never a half-built one;
// they wait while the swap transaction holds the tables' locks. The live
// tables must have no dependants outside the projection (views, foreign
// keys from other tables), or DROP fails and the swap is rolled back. Run
// one Rebuild of a projection at a time.
func (s *Store) Rebuild(ctx context.Context, p Projection) error {
	if err := p.check(); err != nil {
		return err
	}
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	rs := rebuildSchema(s.schema, p.Name)
	cps := pgx.Identifier{rs, "es_rebuild_checkpoint"}.Sanitize()
	wrap := func(step string, err error) error {
		return fmt.Errorf("postgres: rebuild %s: %s: %w", p.Name, step, withCtx(ctx, err))
	}

	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("setup\x00"+p.Name, s.schema)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{rs}.Sanitize()+`;
			CREATE TABLE IF NOT EXISTS `+cps+` (
				name       text        PRIMARY KEY,
				position   bigint      NOT NULL,
				updated_at timestamptz NOT NULL DEFAULT now()
			)`, pgx.QueryExecModeSimpleProtocol); err != nil {
			return err
		}
		return p.Setup(ctx, tx, Tables{schema: rs})
	})
	if err != nil {
		return wrap("setup", err)
	}

	// Replay. Each batch is read outside any transaction (as a
	// subscription reads) and applied in one with the checkpoint.
	rt := Tables{schema: rs}
	for {
		var cp int64
		err := s.pool.QueryRow(ctx, `SELECT position FROM `+cps+` WHERE name = 'rebuild'`).Scan(&cp)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return wrap("checkpoint", err)
		}
		batch, err := es.Collect(s.ReadAll(ctx, es.AllQuery{After: cp, Limit: rebuildBatch}))
		if err != nil {
			return wrap("read", err)
		}
		if len(batch) > 0 {
			err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
				cp, err := lockCheckpoint(ctx, tx, cps, "rebuild")
				if err != nil {
					return err
				}
				last, err := applyAfter(ctx, tx, p, rt, cp, batch)
				if err != nil || last == cp {
					return err
				}
				return setCheckpoint(ctx, tx, cps, "rebuild", last)
			})
			if err != nil {
				return wrap("replay", err)
			}
		}
		if len(batch) < rebuildBatch {
			break
		}
	}

	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.swap(ctx, tx, p, rs, cps) }); err != nil {
		return wrap("swap", err)
	}
	return nil
}

// swap is the last transaction of a rebuild; see [Store.Rebuild].
func (s *Store) swap(ctx context.Context, tx pgx.Tx, p Projection, rs, cps string) error {
	inline := s.isInline(p.Name)
	var live int64
	if inline {
		// Wait for the appends applying p to commit, and hold off new ones.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", projectionKey(p.Name, s.schema)); err != nil {
			return err
		}
	} else {
		var err error
		if live, err = lockCheckpoint(ctx, tx, s.checkpoints, p.Name); err != nil {
			return err
		}
	}
	cp, err := lockCheckpoint(ctx, tx, cps, "rebuild")
	if err != nil {
		return err
	}

	// The events the replay has not reached. For an inline projection
	// that is every committed event: the old tables hold them all (the
	// lock above waited for the appends that were applying), and the
	// appends still in flight will apply theirs to the new tables after
	// the swap. For a consumer it is the readable prefix of the log, which
	// reaches at least the consumer's checkpoint: the consumer read up to
	// there, so those transactions had finished before this one began.
	sql := `SELECT ` + eventColumns + ` FROM ` + s.events + ` WHERE position > $1`
	if !inline {
		sql += ` AND tx_id < pg_snapshot_xmin(pg_current_snapshot())`
	}
	sql += ` ORDER BY position LIMIT $2`
	rt := Tables{schema: rs}
	for {
		batch, err := queryEvents(ctx, tx, sql, cp, readBatch)
		if err != nil {
			return err
		}
		if cp, err = applyAfter(ctx, tx, p, rt, cp, batch); err != nil {
			return err
		}
		if len(batch) < readBatch {
			break
		}
	}
	if !inline && cp < live {
		// Unreachable by the argument above; refuse rather than leave the
		// new tables short of what the checkpoint claims.
		return fmt.Errorf("rebuild reached position %d, behind the consumer's checkpoint %d", cp, live)
	}

	for _, t := range p.Tables {
		if _, err := tx.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{s.schema, t}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+pgx.Identifier{rs, t}.Sanitize()+` SET SCHEMA `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{rs}.Sanitize()+` CASCADE`); err != nil {
		return err
	}
	if !inline {
		// The consumer goes on from here: its next Handle skips what the
		// new tables already hold.
		return setCheckpoint(ctx, tx, s.checkpoints, p.Name, cp)
	}
	return nil
}

// RebuildSchema returns the name of the schema in which [Store.Rebuild]
// builds the named projection's new tables. It exists only while a
// rebuild is under way or was interrupted; dropping it (CASCADE) makes
// the next Rebuild start from position 0.
func (s *Store) RebuildSchema(projection string) string { return rebuildSchema(s.schema, projection) }
