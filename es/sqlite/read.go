package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"math"
	"strings"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// ReadStream implements [es.Store]. Events are fetched batchSize at a
// time; no connection is held while the caller handles them, so the loop
// body may append (even to the stream being read) without deadlocking.
func (s *Store) ReadStream(ctx context.Context, streamID string, q es.StreamQuery) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		if storekit.CheckStreamID(streamID) != nil {
			return // no append could have written to it
		}
		stmt, next, step := s.stmts.streamForward, max(q.From, 1), int64(1)
		if q.Backward {
			stmt, next, step = s.stmts.streamBackward, q.From, -1
			if next <= 0 {
				next = math.MaxInt64
			}
		}
		s.readBatches(ctx, yield, q.Limit, func(limit int) ([]es.Event, error) {
			batch, err := s.fetch(ctx, func() (*sql.Rows, error) {
				return stmt.QueryContext(ctx, streamID, next, limit)
			})
			if len(batch) > 0 {
				next = batch[len(batch)-1].Version + step
			}
			return batch, err
		})
	}
}

// ReadAll implements [es.Store]. Like ReadStream it fetches in batches,
// by position (keyset pagination), holding nothing between batches.
// Positions are assigned in commit order (see appendTx), so reading on
// from the last position seen never skips an event.
func (s *Store) ReadAll(ctx context.Context, q es.AllQuery) iter.Seq2[es.Event, error] {
	return func(yield func(es.Event, error) bool) {
		// A filter value no event can hold matches nothing, as on every
		// store (see storekit.PruneQuery).
		q, ok := storekit.PruneQuery(q)
		if !ok {
			return
		}
		var b strings.Builder
		b.WriteString(`SELECT ` + eventColumns + ` FROM es_events WHERE position > ?`)
		filter := func(column string, values []string) []any {
			if len(values) == 0 {
				return nil
			}
			b.WriteString(` AND ` + column + ` IN (?` + strings.Repeat(`, ?`, len(values)-1) + `)`)
			args := make([]any, len(values))
			for i, v := range values {
				args[i] = v
			}
			return args
		}
		catArgs := filter("category", q.Categories)
		typeArgs := filter("type", q.Types)
		b.WriteString(` ORDER BY position LIMIT ?`)
		query := b.String()

		after := max(q.After, 0)
		s.readBatches(ctx, yield, q.Limit, func(limit int) ([]es.Event, error) {
			args := make([]any, 0, 2+len(catArgs)+len(typeArgs))
			args = append(args, after)
			args = append(args, catArgs...)
			args = append(args, typeArgs...)
			args = append(args, limit)
			batch, err := s.fetch(ctx, func() (*sql.Rows, error) {
				return s.readers.QueryContext(ctx, query, args...)
			})
			if len(batch) > 0 {
				after = batch[len(batch)-1].Position
			}
			return batch, err
		})
	}
}

// readBatches yields the events of successive batches until one comes back
// short, the caller stops, or limit (0: none) events have been yielded.
func (s *Store) readBatches(ctx context.Context, yield func(es.Event, error) bool, limit int, next func(limit int) ([]es.Event, error)) {
	left := limit
	for {
		n := batchSize
		if limit > 0 {
			n = min(n, left)
		}
		if err := ctx.Err(); err != nil {
			yield(es.Event{}, fmt.Errorf("sqlite: read: %w", err))
			return
		}
		batch, err := next(n)
		// The events before an unreadable one are good: yield them first.
		for _, e := range batch {
			if !yield(e, nil) {
				return
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(es.Event{}, fmt.Errorf("sqlite: read: %w", err))
			return
		}
		if len(batch) < n {
			return
		}
		if limit > 0 {
			if left -= len(batch); left == 0 {
				return
			}
		}
	}
}

// fetch runs a query and reads all its rows, releasing the connection
// before it returns. On an unreadable row it returns the rows before it
// with the error.
func (s *Store) fetch(ctx context.Context, query func() (*sql.Rows, error)) ([]es.Event, error) {
	var out []es.Event
	err := s.retryBusy(ctx, func() error {
		out = out[:0]
		rows, err := query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return rows.Err()
	})
	return out, err
}
