package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// readBatch is how many events a read fetches per query. Each query runs
// on its own, outside any transaction, and its rows are in memory before
// the first is yielded: no connection is held while the caller's loop
// body runs, so the body may append (or read) without deadlocking against
// its iterator, and no long transaction holds back the cluster's xmin
// horizon (which would delay vacuum and every ReadAll in the cluster).
const readBatch = 500

const eventColumns = `event_id::text, stream_id, version, position, type, schema_version, data::text, metadata::text, recorded_at`

// ReadStream implements [es.Store]. Events are fetched in batches, by
// version. Stream reads need no in-flight filter: appends to one stream are
// serialised by its row lock, so its versions become visible in order.
func (s *Store) ReadStream(ctx context.Context, streamID string, q es.StreamQuery) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		if storekit.CheckStreamID(streamID) != nil {
			return // no append could have written to it
		}
		if err := s.checkSchema(ctx); err != nil {
			yield(es.Event{}, fmt.Errorf("postgres: read stream %q: %w", streamID, err))
			return
		}
		sql := `SELECT ` + eventColumns + ` FROM ` + s.events +
			` WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3`
		next := max(q.From, 1)
		if q.Backward {
			sql = `SELECT ` + eventColumns + ` FROM ` + s.events +
				` WHERE stream_id = $1 AND version <= $2 ORDER BY version DESC LIMIT $3`
			next = q.From
			if next <= 0 {
				next = math.MaxInt64
			}
		}
		count := 0
		for {
			n := readBatch
			if q.Limit > 0 {
				n = min(n, q.Limit-count)
			}
			batch, err := s.query(ctx, sql, streamID, next, n)
			for _, e := range batch { // the events before an unreadable one
				if !yield(e, nil) {
					return
				}
			}
			if err != nil {
				yield(es.Event{}, fmt.Errorf("postgres: read stream %q: %w", streamID, err))
				return
			}
			count += len(batch)
			if len(batch) < n || (q.Limit > 0 && count >= q.Limit) {
				return
			}
			if q.Backward {
				next = batch[len(batch)-1].Version - 1
			} else {
				next = batch[len(batch)-1].Version + 1
			}
		}
	}
}

// ReadAll implements [es.Store]. Events are fetched in batches, by
// position, and only from transactions older than every appending
// transaction still in flight (see horizonCTE):
//
//	tx_id < (the oldest in-flight transaction that may be appending)
//
// This is what lets a reader that remembers the last position it handled
// never skip an event. A sequence hands out positions when a transaction
// inserts, not when it commits, so without the filter a reader could see
// position 11 committed while position 10 is still in flight, move past
// it, and never see 10 when it commits. Appends reserve their positions
// and get their transaction ID under one short lock, so among appending
// transactions a lower transaction ID always means lower positions. The
// filter then keeps exactly a prefix of the eventual log: any event at a
// lower position than one returned belongs to a transaction with a lower
// ID, hence one that had already finished when the snapshot was taken, so
// it is either visible in the same snapshot or rolled back for good.
//
// The cost: events become readable only once every append that got its
// transaction ID before them has finished. Transactions that append
// nothing (of this application or any other in the cluster) do not hold
// ReadAll back (unless a prepared transaction exists, see horizonCTE).
// Reads of one stream are not affected.
//
// ReadAll may therefore stop short of the latest commits; a reader that
// follows the log should read again after [Store.Notify] signals, and on a
// timer as well.
func (s *Store) ReadAll(ctx context.Context, q es.AllQuery) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		// PostgreSQL refuses text with a NUL or invalid UTF-8, which no
		// event can hold: such a filter value matches nothing.
		q, ok := storekit.PruneQuery(q)
		if !ok {
			return
		}
		if err := s.checkSchema(ctx); err != nil {
			yield(es.Event{}, fmt.Errorf("postgres: read all: %w", err))
			return
		}
		var sql strings.Builder
		sql.WriteString(s.horizon() + `SELECT ` + eventColumns + ` FROM ` + s.events +
			` WHERE position > $1 AND tx_id < (SELECT h FROM horizon)`)
		args := []any{max(q.After, 0), 0}
		if len(q.Categories) > 0 {
			args = append(args, q.Categories)
			sql.WriteString(` AND category = ANY($` + strconv.Itoa(len(args)) + `::text[])`)
		}
		if len(q.Types) > 0 {
			args = append(args, q.Types)
			sql.WriteString(` AND type = ANY($` + strconv.Itoa(len(args)) + `::text[])`)
		}
		sql.WriteString(` ORDER BY position LIMIT $2`)

		count := 0
		for {
			n := readBatch
			if q.Limit > 0 {
				n = min(n, q.Limit-count)
			}
			args[1] = n
			batch, err := s.query(ctx, sql.String(), args...)
			for _, e := range batch { // the events before an unreadable one
				if !yield(e, nil) {
					return
				}
			}
			if err != nil {
				yield(es.Event{}, fmt.Errorf("postgres: read all: %w", err))
				return
			}
			count += len(batch)
			if len(batch) < n || (q.Limit > 0 && count >= q.Limit) {
				return
			}
			args[0] = batch[len(batch)-1].Position
		}
	}
}

// query runs one read and returns all its rows, releasing the connection
// before the caller sees any of them.
func (s *Store) query(ctx context.Context, sql string, args ...any) ([]es.Event, error) {
	return queryEvents(ctx, s.pool, sql, args...)
}

// querier is a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// queryEvents runs a query that selects eventColumns and returns the
// events. On an unreadable row it returns the events before it with the
// error.
func queryEvents(ctx context.Context, q querier, sql string, args ...any) ([]es.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, withCtx(ctx, err)
	}
	var out []es.Event
	var (
		e        es.Event
		data, md string
		recorded pgtype.Timestamptz // 'infinity' is a timestamptz, not a time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&e.ID, &e.StreamID, &e.Version, &e.Position, &e.Type, &e.SchemaVersion, &data, &md, &recorded},
		func() error {
			e.Data = json.RawMessage(data)
			if err := storekit.DecodeMetadata([]byte(md), &e.Metadata); err != nil {
				return fmt.Errorf("%w: position %d, ID %s: metadata: %v", es.ErrUnreadableEvent, e.Position, e.ID, err)
			}
			if !recorded.Valid || recorded.InfinityModifier != pgtype.Finite {
				return fmt.Errorf("%w: position %d, ID %s: recorded_at is not a time", es.ErrUnreadableEvent, e.Position, e.ID)
			}
			e.RecordedAt = recorded.Time.UTC()
			out = append(out, e)
			return nil
		})
	if err != nil {
		return out, withCtx(ctx, err)
	}
	return out, nil
}
