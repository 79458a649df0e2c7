package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// The outbox table holds the messages of [Store.AppendEnqueue], written in
// the events' transaction, until a relay ([es.Relay]) delivers them.
//
// Per-key order under concurrency rests on the trick that keeps ReadAll
// from skipping events. An outbox sequence number (seq) is drawn when a
// transaction writes, not when it commits, so two enqueuers can commit
// in the other order: a relay that delivered seq 8 of key K could then
// see seq 7 of K appear behind it. So every enqueuing transaction draws
// its seqs and gets its transaction ID under one short advisory lock (the
// one that also reserves event positions, see appendTx): among enqueuers,
// a lower transaction ID means lower seqs. Every row records its
// transaction's ID (tx_id), and Due only returns rows whose tx_id is
// below the oldest transaction still running that may be a writer
// (see horizonCTE, ReadAll's horizon too). If a row passes that
// filter, every transaction that drew a lower seq has a lower ID, so it
// has ended: its rows are visible or never will be. Due therefore sees a
// prefix of the outbox in seq order, and never returns a message while an
// earlier one of its key may still commit.

// dueQuery selects the due messages of some buckets ($2) at a time ($1),
// at most $3, in seq order. %[1]s is the outbox table. It follows the
// store's horizon clause (horizonCTE): a row may be returned only if
// every transaction that drew a lower seq has ended, and is therefore
// visible in the statement's snapshot or rolled back for good. Those
// transactions have lower IDs (the reservation lock), so tx_id <
// pg_snapshot_xmin would do, but it also waits for transactions that
// enqueue nothing — any long transaction in the cluster, a report,
// another application's. The horizon waits only for writers (see
// horizonCTE for why that is safe).
//
// The messages to deliver at once and the deadlines that fell due are read
// apart, each through its own partial index (outbox_now_idx,
// outbox_later_idx), so that deadlines scheduled for later are never read;
// each part keeps its first $3 by seq, and so does their union.
const dueQuery = `SELECT * FROM (
	(SELECT ` + dueColumns + ` FROM %[1]s AS o
	WHERE o.bucket = ANY($2::int[]) AND o.` + pendingCond + ` AND o.deliver_at IS NULL
		AND ` + dueCond + `
	ORDER BY o.seq LIMIT $3)
	UNION ALL
	(SELECT ` + dueColumns + ` FROM %[1]s AS o
	WHERE o.bucket = ANY($2::int[]) AND o.` + pendingCond + ` AND o.deliver_at IS NOT NULL AND o.deliver_at <= $1
		AND ` + dueCond + `
	ORDER BY o.seq LIMIT $3)
) AS due
ORDER BY seq
LIMIT $3`

// dueColumns are the columns Due reads.
const dueColumns = `o.seq, o.message_id::text, o.key, o.type, o.schema_version, o.data::text, o.metadata::text, o.deliver_at, o.attempts`

// dueCond is the rest of Due's condition on a pending message o: below the
// horizon, not itself held back, and not behind a held-back message of its
// key (one due but waiting for a retry, or parked).
const dueCond = `o.tx_id < (SELECT h FROM horizon)
		AND NOT o.parked AND (o.retry_at IS NULL OR o.retry_at <= $1)
		AND NOT EXISTS (
			SELECT 1 FROM %[1]s AS h
			WHERE h.key = o.key AND h.seq < o.seq AND h.` + pendingCond + ` AND h.attempts > 0
				AND (h.deliver_at IS NULL OR h.deliver_at <= $1)
				AND (h.parked OR h.retry_at > $1))`

// pendingCond is the condition of a message still waiting for delivery; the
// partial indexes of the outbox use the same text, so the planner can use
// them.
const pendingCond = `delivered_at IS NULL AND cancelled_at IS NULL`

// queueEnqueue queues the writes of enq: the messages, numbered from
// lastSeq-len(enq.Messages)+1 (the reserved seqs), skipping IDs already in
// the outbox, then the cancellations, as the memory store does, so that a
// message cancelled in the request that enqueues it is never delivered.
func (s *Store) queueEnqueue(b *pgx.Batch, enq es.Enqueue, lastSeq int64) error {
	now, err := storekit.RecordedAt(s.clock)
	if err != nil {
		return err
	}
	if n := len(enq.Messages); n > 0 {
		var (
			seqs      = make([]int64, n)
			ids       = make([]string, n)
			keys      = make([]string, n)
			buckets   = make([]int32, n)
			types     = make([]string, n)
			schemas   = make([]int32, n)
			data      = make([]string, n)
			metadata  = make([]string, n)
			deliverAt = make([]pgtype.Timestamptz, n)
		)
		for i, m := range enq.Messages {
			md, err := json.Marshal(m.Metadata)
			if err != nil {
				return fmt.Errorf("postgres: enqueue: metadata of message %s: %w", m.ID, err)
			}
			seqs[i] = lastSeq - int64(n) + 1 + int64(i)
			ids[i], keys[i], types[i] = m.ID, m.Key, m.Type
			buckets[i], schemas[i] = int32(es.MessageBucket(m.Key)), int32(m.SchemaVersion)
			data[i], metadata[i] = string(m.Data), string(md)
			if !m.DeliverAt.IsZero() {
				deliverAt[i] = pgtype.Timestamptz{Time: ceilMicro(m.DeliverAt), Valid: true}
			}
		}
		// ON CONFLICT: a message ID already in the outbox (committed, or
		// being written by a concurrent transaction, which the insert
		// waits for) is skipped; its reserved seq stays unused.
		b.Queue(`INSERT INTO `+s.outbox+`
				(seq, message_id, key, bucket, type, schema_version, data, metadata, deliver_at, created_at)
			SELECT q, id::uuid, k, bu, t, sv, d::jsonb, m::jsonb, da, $10
			FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[],
				$9::timestamptz[]) AS u(q, id, k, bu, t, sv, d, m, da)
			ORDER BY q
			ON CONFLICT (message_id) DO NOTHING`,
			seqs, ids, keys, buckets, types, schemas, data, metadata, deliverAt, now)
	}
	if len(enq.Cancel) > 0 {
		// A delivered message stays delivered; an unknown ID is no error.
		b.Queue(`UPDATE `+s.outbox+` SET cancelled_at = $2
			WHERE message_id = ANY($1::text[]::uuid[]) AND `+pendingCond, enq.Cancel, now)
	}
	return nil
}

// ceilMicro rounds t up to PostgreSQL's precision, the microsecond, so that
// a deadline is never due before its time. (pgx truncates.)
func ceilMicro(t time.Time) time.Time {
	if c := t.Truncate(time.Microsecond); !c.Equal(t) {
		return c.Add(time.Microsecond)
	}
	return t
}

// Due implements [es.Outbox] with one query on the pending index of the
// buckets, checking the holdback on the small index of failed messages.
// Only messages below the enqueue horizon are returned (see dueQuery and
// the comment at the top of this file).
func (s *Store) Due(ctx context.Context, now time.Time, buckets []int, limit int) ([]es.OutboxMessage, error) {
	if len(buckets) == 0 || limit <= 0 {
		return nil, ctx.Err()
	}
	if err := s.checkSchema(ctx); err != nil {
		return nil, err
	}
	bs := make([]int32, len(buckets))
	for i, b := range buckets {
		bs[i] = int32(b)
	}
	rows, err := s.pool.Query(ctx, s.horizon()+fmt.Sprintf(dueQuery, s.outbox), now, bs, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: due: %w", withCtx(ctx, err))
	}
	out, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: due: %w", withCtx(ctx, err))
	}
	return out, nil
}

// Messages implements [es.MessageReader]: a lookup by the outbox's unique
// message_id index, delivered messages included. IDs that are not UUIDs
// are not message IDs, so they are left out.
func (s *Store) Messages(ctx context.Context, ids []string) ([]es.OutboxMessage, error) {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !es.ValidID(id) })
	if len(ids) == 0 {
		return nil, ctx.Err()
	}
	if err := s.checkSchema(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, message_id::text, key, type, schema_version, data::text, metadata::text, deliver_at, attempts
		FROM `+s.outbox+` WHERE message_id = ANY($1::text[]::uuid[]) ORDER BY seq`, ids)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox messages: %w", withCtx(ctx, err))
	}
	out, err := scanMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox messages: %w", withCtx(ctx, err))
	}
	return out, nil
}

// scanMessages reads the outbox rows of Due and Messages (seq, message_id,
// key, type, schema_version, data, metadata, deliver_at, attempts).
func scanMessages(rows pgx.Rows) ([]es.OutboxMessage, error) {
	var (
		out       []es.OutboxMessage
		m         es.OutboxMessage
		data, md  string
		deliverAt pgtype.Timestamptz
	)
	_, err := pgx.ForEachRow(rows, []any{&m.Seq, &m.ID, &m.Key, &m.Type, &m.SchemaVersion, &data, &md, &deliverAt, &m.Attempts},
		func() error {
			msg := m
			msg.Data = json.RawMessage(data)
			if err := json.Unmarshal([]byte(md), &msg.Metadata); err != nil {
				return fmt.Errorf("message %s: metadata: %w", msg.ID, err)
			}
			if deliverAt.Valid {
				msg.DeliverAt = deliverAt.Time.UTC()
			}
			out = append(out, msg)
			return nil
		})
	return out, err
}

// MarkDelivered implements [es.Outbox]. Marking a message delivered twice
// is not an error.
func (s *Store) MarkDelivered(ctx context.Context, seq int64) error {
	return s.updateMessage(ctx, "mark delivered", seq,
		`UPDATE `+s.outbox+` SET delivered_at = coalesce(delivered_at, $2) WHERE seq = $1`, seq, s.clock.Now().UTC())
}

// MarkFailed implements [es.Outbox]: one more attempt, the retry time, the
// parked flag and the reason, which stays in last_error for operators.
func (s *Store) MarkFailed(ctx context.Context, seq int64, retryAt time.Time, park bool, reason string) error {
	return s.updateMessage(ctx, "mark failed", seq,
		`UPDATE `+s.outbox+` SET attempts = attempts + 1, retry_at = $2, parked = $3, last_error = $4 WHERE seq = $1`,
		seq, ceilMicro(retryAt), park, reason)
}

func (s *Store) updateMessage(ctx context.Context, what string, seq int64, query string, args ...any) error {
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("postgres: %s %d: %w", what, seq, withCtx(ctx, err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: no outbox message %d", what, seq)
	}
	return nil
}

// Backlog implements [es.Outbox]: the messages neither delivered nor
// cancelled, parked ones and not-yet-due deadlines included.
func (s *Store) Backlog(ctx context.Context) (int64, error) {
	if err := s.checkSchema(ctx); err != nil {
		return 0, err
	}
	var n int64
	// Two counts, each of one partial index.
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+s.outbox+` WHERE `+pendingCond+` AND deliver_at IS NULL)
		+ (SELECT count(*) FROM `+s.outbox+` WHERE `+pendingCond+` AND deliver_at IS NOT NULL)`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: backlog: %w", withCtx(ctx, err))
	}
	return n, nil
}

// InboxTx records in tx that consumer handled the message messageID, and
// reports whether this is the first time. Call it in the transaction that
// applies the message's effect, and apply the effect only when first is
// true: the record and the effect then commit together or not at all, so
// a message that the relay delivers more than once (it delivers at least
// once) takes effect exactly once — for effects written in tx. An effect
// outside the database (an e-mail, a call to another service) cannot
// join the transaction and stays at least once.
//
// tx may be any transaction on the store's database, and InboxTx may come
// at any point in it. When two transactions record the same message at
// once, the second waits for the first (the primary key) and reports
// first=false if it committed, first=true if it rolled back. Inbox rows
// are kept for good: a message can be redelivered at any time, after a
// parked one is released, say.
func (s *Store) InboxTx(ctx context.Context, tx pgx.Tx, consumer, messageID string) (first bool, err error) {
	if err := errors.Join(storekit.CheckName("inbox consumer", consumer), storekit.CheckName("message ID", messageID)); err != nil {
		return false, fmt.Errorf("postgres: inbox: %w", err)
	}
	if consumer == "" || messageID == "" {
		return false, errors.New("postgres: inbox: empty consumer or message ID")
	}
	if err := s.checkSchema(ctx); err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `INSERT INTO `+s.inbox+` (consumer, message_id, handled_at) VALUES ($1, $2, $3)
		ON CONFLICT (consumer, message_id) DO NOTHING`, consumer, messageID, s.clock.Now().UTC())
	if err != nil {
		return false, fmt.Errorf("postgres: inbox %s: record %s: %w", consumer, messageID, withCtx(ctx, err))
	}
	return tag.RowsAffected() == 1, nil
}

// txKey is the context key under which Inbox.Handle passes its transaction.
type txKey struct{}

// TxFrom returns the transaction that the [Store.Inbox]'s Handle runs fn in, so that
// fn can write its effect in it, or nil if ctx carries none.
func TxFrom(ctx context.Context) pgx.Tx {
	tx, _ := ctx.Value(txKey{}).(pgx.Tx)
	return tx
}

// inbox is an [es.Inbox] on the store's inbox table; see [Store.Inbox].
type inbox struct{ s *Store }

// Inbox returns an [es.Inbox] whose Handle runs fn inside a transaction
// that also records the message ([Store.InboxTx]); fn finds the
// transaction with [TxFrom]. Effects that fn writes through that
// transaction commit with the record: exactly once. Whatever else fn does
// is at least once: a crash after fn and before the commit runs it again
// on the next delivery.
func (s *Store) Inbox() es.Inbox { return inbox{s: s} }

// Handle implements [es.Inbox]. A message already recorded for consumer
// is skipped without calling fn; otherwise fn runs and the record commits
// with fn's writes if fn returns nil. A concurrent Handle of the same
// message waits for this one to end.
func (i inbox) Handle(ctx context.Context, consumer, messageID string, fn func(ctx context.Context) error) (bool, error) {
	if err := errors.Join(storekit.CheckName("inbox consumer", consumer), storekit.CheckName("message ID", messageID)); err != nil {
		return false, fmt.Errorf("postgres: inbox: %w", err)
	}
	// Checked before the transaction takes a connection, so that InboxTx
	// finds the answer cached and needs no second one.
	if err := i.s.checkSchema(ctx); err != nil {
		return false, err
	}
	ran := false
	err := pgx.BeginFunc(ctx, i.s.pool, func(tx pgx.Tx) error {
		first, err := i.s.InboxTx(ctx, tx, consumer, messageID)
		if err != nil || !first {
			return err
		}
		ran = true
		return fn(context.WithValue(ctx, txKey{}, tx))
	})
	if err != nil {
		return false, fmt.Errorf("postgres: inbox %s: message %s: %w", consumer, messageID, withCtx(ctx, err))
	}
	return ran, nil
}

// The store keeps an outbox.
var (
	_ es.Outbox        = (*Store)(nil)
	_ es.MessageReader = (*Store)(nil)
)
