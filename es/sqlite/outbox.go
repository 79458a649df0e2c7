package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"esgo.dev/es"
)

const (
	insertMessages = `INSERT INTO es_outbox
		(message_id, key, bucket, type, schema_version, data, metadata, deliver_at, created_at)
		VALUES ` + messageValues
	messageValues = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// A message ID already in the outbox is skipped: enqueuing is
	// idempotent, and VALUES order still decides the others' seq.
	onMessageConflict = ` ON CONFLICT (message_id) DO NOTHING`

	messageColumns = `seq, message_id, key, type, schema_version, data, metadata, deliver_at, attempts`

	// pending is the condition of a message still waiting for delivery;
	// the partial indexes of es_outbox use the same text, which is what
	// lets SQLite use them.
	pending = `delivered_at IS NULL AND cancelled_at IS NULL`
)

// dueQuery selects the messages of some buckets that may be delivered at
// a time (the first parameter, repeated): pending, due, neither parked nor
// waiting for a retry, and not behind such a held-back message of their
// key. The messages to deliver at once and the deadlines that fell due are
// read apart, each through its own partial index (es_outbox_now,
// es_outbox_later), so that deadlines scheduled for later are never read;
// each part keeps its first ?2 by seq, and so does their union. A
// held-back message has failed at least once, so it has a retry_at: the
// holdback check reads the small es_outbox_held index only. %[1]s is the
// list of buckets.
const dueQuery = `SELECT ` + messageColumns + ` FROM (
	SELECT * FROM (SELECT ` + messageColumns + ` FROM es_outbox AS o
		WHERE o.bucket IN (%[1]s) AND o.` + pending + ` AND o.deliver_at IS NULL
		AND o.parked = 0 AND coalesce(o.retry_at, 0) <= ?1 AND ` + notHeldBack + `
		ORDER BY o.seq LIMIT ?2)
	UNION ALL
	SELECT * FROM (SELECT ` + messageColumns + ` FROM es_outbox AS o
		WHERE o.bucket IN (%[1]s) AND o.` + pending + ` AND o.deliver_at IS NOT NULL AND o.deliver_at <= ?1
		AND o.parked = 0 AND coalesce(o.retry_at, 0) <= ?1 AND ` + notHeldBack + `
		ORDER BY o.seq LIMIT ?2)
) ORDER BY seq LIMIT ?2`

// notHeldBack is Due's holdback check: no earlier message of o's key is
// due but waiting for a retry, or parked.
const notHeldBack = `NOT EXISTS (
		SELECT 1 FROM es_outbox AS h
		WHERE h.key = o.key AND h.seq < o.seq
		AND h.` + pending + ` AND h.retry_at IS NOT NULL
		AND coalesce(h.deliver_at, 0) <= ?1
		AND (h.parked = 1 OR h.retry_at > ?1))`

// unixNano returns t as the INTEGER the outbox stores: nanoseconds since
// 1970 UTC, which compare exactly in SQL. Times beyond what an int64 of
// nanoseconds holds (before 1678, after 2262) are clamped to its bounds.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// nullTime is unixNano(t), or NULL for the zero time.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return unixNano(t)
}

// enqueueTx writes enq in the caller's write transaction: the messages
// (skipping IDs already in the outbox), then the cancellations, as the
// memory store does, so a message cancelled in the request that enqueues
// it is never delivered.
func (s *Store) enqueueTx(ctx context.Context, tx *sql.Tx, enq es.Enqueue) error {
	if len(enq.Messages) == 0 && len(enq.Cancel) == 0 {
		return nil
	}
	now := unixNano(s.cfg.Clock.Now())
	for msgs := range slices.Chunk(enq.Messages, insertChunk) {
		args := make([]any, 0, 9*len(msgs))
		for _, m := range msgs {
			var md any // NULL when empty
			if !m.Metadata.IsZero() {
				b, err := json.Marshal(m.Metadata)
				if err != nil {
					return fmt.Errorf("encode metadata of message %s: %w", m.ID, err)
				}
				md = string(b)
			}
			args = append(args, m.ID, m.Key, es.MessageBucket(m.Key), m.Type, m.SchemaVersion, string(m.Data), md,
				nullTime(m.DeliverAt), now)
		}
		q := insertMessages + strings.Repeat(", "+messageValues, len(msgs)-1) + onMessageConflict
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("enqueue messages: %w", err)
		}
	}
	for ids := range slices.Chunk(enq.Cancel, lookupChunk) {
		args := make([]any, 0, len(ids)+1)
		args = append(args, now)
		for _, id := range ids {
			args = append(args, id)
		}
		// A delivered message stays delivered; an unknown ID is no error.
		q := `UPDATE es_outbox SET cancelled_at = ? WHERE message_id IN (?` + strings.Repeat(", ?", len(ids)-1) +
			`) AND ` + pending
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("cancel messages: %w", err)
		}
	}
	return nil
}

// Due implements [es.Outbox]. It reads from the reader pool: one query
// over the buckets' messages to deliver at once (es_outbox_now) and their
// deadlines that fell due (es_outbox_later), with the holdback check on
// the failed ones (es_outbox_held); see dueQuery.
func (s *Store) Due(ctx context.Context, now time.Time, buckets []int, limit int) ([]es.OutboxMessage, error) {
	if len(buckets) == 0 || limit == 0 {
		return nil, ctx.Err()
	}
	args := []any{unixNano(now), limit}
	marks := make([]string, len(buckets))
	for i, b := range buckets {
		marks[i] = fmt.Sprintf("?%d", i+3)
		args = append(args, b)
	}
	q := fmt.Sprintf(dueQuery, strings.Join(marks, ", "))
	out, err := s.queryMessages(ctx, q, args)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due messages: %w", err)
	}
	return out, nil
}

// queryMessages runs a query of outbox rows (messageColumns) on the
// readers, again while the file is busy.
func (s *Store) queryMessages(ctx context.Context, query string, args []any) ([]es.OutboxMessage, error) {
	var out []es.OutboxMessage
	err := s.retryBusy(ctx, func() error {
		out = out[:0]
		rows, err := s.readers.QueryContext(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	return out, err
}

func scanMessage(row scanner) (es.OutboxMessage, error) {
	var (
		m         es.OutboxMessage
		data, md  []byte
		deliverAt sql.NullInt64
	)
	if err := row.Scan(&m.Seq, &m.ID, &m.Key, &m.Type, &m.SchemaVersion, &data, &md, &deliverAt, &m.Attempts); err != nil {
		return es.OutboxMessage{}, err
	}
	m.Data = data
	if md != nil {
		if err := json.Unmarshal(md, &m.Metadata); err != nil {
			return es.OutboxMessage{}, fmt.Errorf("message %s: decode metadata: %w", m.ID, err)
		}
	}
	if deliverAt.Valid {
		m.DeliverAt = time.Unix(0, deliverAt.Int64).UTC()
	}
	return m, nil
}

// errNoMessage is returned for a sequence number the outbox does not hold.
var errNoMessage = errors.New("no such outbox message")

// MarkDelivered implements [es.Outbox]. Marking a message delivered twice
// keeps the first time.
func (s *Store) MarkDelivered(ctx context.Context, seq int64) error {
	return s.updateMessage(ctx, "mark delivered", seq,
		`UPDATE es_outbox SET delivered_at = coalesce(delivered_at, ?) WHERE seq = ?`,
		unixNano(s.cfg.Clock.Now()), seq)
}

// MarkFailed implements [es.Outbox]: one more attempt, the time of the
// next one, whether the message is parked, and the reason (last_error, for
// the operator).
func (s *Store) MarkFailed(ctx context.Context, seq int64, retryAt time.Time, park bool, reason string) error {
	return s.updateMessage(ctx, "mark failed", seq,
		`UPDATE es_outbox SET attempts = attempts + 1, retry_at = ?, parked = ?, last_error = ? WHERE seq = ?`,
		unixNano(retryAt), park, strings.ToValidUTF8(strings.ReplaceAll(reason, "\x00", ""), "?"), seq)
}

// updateMessage runs an UPDATE of one outbox row in a write transaction.
func (s *Store) updateMessage(ctx context.Context, what string, seq int64, query string, args ...any) error {
	err := s.withWriteTx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return cmpErr(err, errNoMessage)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: %s %d: %w", what, seq, err)
	}
	return nil
}

// cmpErr returns err if it is not nil, otherwise fallback.
func cmpErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// Backlog implements [es.Outbox]: the messages neither delivered nor
// cancelled, parked ones included.
func (s *Store) Backlog(ctx context.Context) (int64, error) {
	var n int64
	err := s.retryBusy(ctx, func() error {
		// Two counts, each of one partial index.
		return s.readers.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM es_outbox WHERE `+pending+` AND deliver_at IS NULL)
			+ (SELECT count(*) FROM es_outbox WHERE `+pending+` AND deliver_at IS NOT NULL)`).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: outbox backlog: %w", err)
	}
	return n, nil
}

// maxMessageLookup bounds the IDs of one query of Messages (SQLite's
// default limit of bound parameters is 32766).
const maxMessageLookup = 500

// Messages implements [es.MessageReader]: a lookup by the outbox's unique
// message_id index, delivered messages included.
func (s *Store) Messages(ctx context.Context, ids []string) ([]es.OutboxMessage, error) {
	var out []es.OutboxMessage
	for chunk := range slices.Chunk(ids, maxMessageLookup) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		query := `SELECT ` + messageColumns + ` FROM es_outbox WHERE message_id IN (?` +
			strings.Repeat(", ?", len(chunk)-1) + `) ORDER BY seq`
		found, err := s.queryMessages(ctx, query, args)
		if err != nil {
			return nil, fmt.Errorf("sqlite: outbox messages: %w", err)
		}
		out = append(out, found...)
	}
	slices.SortFunc(out, func(a, b es.OutboxMessage) int { return cmp.Compare(a.Seq, b.Seq) })
	return slices.CompactFunc(out, func(a, b es.OutboxMessage) bool { return a.Seq == b.Seq }), nil
}

// Compile-time checks: the store keeps an outbox, and its messages can be
// looked up.
var (
	_ es.Outbox        = (*Store)(nil)
	_ es.MessageReader = (*Store)(nil)
)
