package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// Append implements [es.Store]. It runs one transaction (see
// [Store.AppendTx] for what happens inside it) and commits it.
//
// When two identical appends race, the loser's insert fails on the unique
// event ID; Append then runs its transaction once more, and the second run
// sees the winner's events and answers as for any repeated append. A
// deadlock between appends that reuse each other's event IDs in different
// streams is retried the same way.
//
// If the context ends or the connection breaks once COMMIT was sent, the
// append may or may not have been written: the error wraps
// [es.ErrOutcomeUnknown], and retrying with the same event IDs is safe and
// tells.
func (s *Store) Append(ctx context.Context, appends ...es.StreamAppend) (res []es.AppendResult, err error) {
	if err := storekit.CheckAppend(appends); err != nil {
		storekit.ObserveAppend(s.observer, time.Now(), 0, err)
		return nil, err
	}
	return s.appendEnqueue(ctx, es.Enqueue{}, appends)
}

// AppendEnqueue implements [es.Outbox]: [Store.Append] that also writes
// enq's messages to the outbox table and cancels its scheduled ones, in
// the same transaction as the events and the inline projections. See
// [Store.AppendEnqueueTx] for the transaction's body and the outbox's
// ordering rule.
func (s *Store) AppendEnqueue(ctx context.Context, enq es.Enqueue, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	if err := storekit.CheckAppendEnqueue(enq, appends); err != nil {
		storekit.ObserveAppend(s.observer, time.Now(), 0, err)
		return nil, err
	}
	return s.appendEnqueue(ctx, enq, appends)
}

// appendEnqueue runs a validated request in its own transaction, once
// more after a lost race on an event ID or a deadlock.
func (s *Store) appendEnqueue(ctx context.Context, enq es.Enqueue, appends []es.StreamAppend) (res []es.AppendResult, err error) {
	start := time.Now()
	written := 0
	defer func() { storekit.ObserveAppend(s.observer, start, written, err) }()
	if err := s.checkSchema(ctx); err != nil {
		return nil, err
	}
	if err := s.setupInline(ctx); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		res, written, err = s.appendOnce(ctx, enq, appends)
		if err == nil || attempt > 0 || !retryable(err) {
			return res, err
		}
	}
}

// retryable reports errors that a second run of the append transaction
// resolves: a concurrent append stored one of the event IDs (the re-run
// finds it and applies the idempotency rules), or a deadlock.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return pgErr.Code == "40P01" || (pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key")
}

func (s *Store) appendOnce(ctx context.Context, enq es.Enqueue, appends []es.StreamAppend) ([]es.AppendResult, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: append: %w", err)
	}
	if len(s.inline) > 0 {
		return s.appendInline(ctx, enq, appends)
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: append: %w", withCtx(ctx, err))
	}
	// The transaction opens in appendTx's first batch (BEGIN travels with
	// the locks) and commits in its second (COMMIT travels with the
	// inserts): two round trips where BEGIN, two batches and COMMIT took
	// four. Whatever is left open on the way out (a failed, repeated or
	// refused append) is rolled back before the connection goes back to
	// the pool, which would otherwise close it; WithoutCancel, since after
	// a cancellation it must still reach the server.
	defer func() {
		if pc := c.Conn().PgConn(); !pc.IsClosed() && pc.TxStatus() != 'I' {
			_, _ = c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		c.Release()
	}()
	res, written, _, err := s.appendTx(ctx, ownTx{c.Conn()}, enq, appends, true)
	return res, written, err
}

// appendInline is appendOnce for a store with inline projections: their
// Apply runs between the inserts and COMMIT and gets a [pgx.Tx] of the
// pool, so BEGIN and COMMIT take a round trip each.
func (s *Store) appendInline(ctx context.Context, enq es.Enqueue, appends []es.StreamAppend) ([]es.AppendResult, int, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: append: begin: %w", withCtx(ctx, err))
	}
	// Rolling back after a commit is a no-op; after a cancellation it must
	// still reach the server, hence WithoutCancel.
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // the append's own error is what matters

	res, written, dirty, err := s.appendTx(ctx, tx, enq, appends, false)
	if err != nil || !dirty {
		// A failed append, a repeated one or a guard-only one: nothing to keep.
		return res, 0, err
	}
	if h := s.hooks; h != nil && h.beforeCommit != nil {
		if err := h.beforeCommit(ctx, tx); err != nil {
			return nil, 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, commitError(ctx, err)
	}
	return res, written, nil
}

// ownTx is the transaction that appendOnce opens and commits itself, in
// appendTx's batches, on a connection of the pool: the [pgx.Tx] that
// appendTx and the test hooks see. It is never handed to user code (a
// store with inline projections appends in a [pgx.Tx] of the pool), and
// it has no nested transactions or large objects.
type ownTx struct{ c *pgx.Conn }

var errOwnTx = errors.New("postgres: not available in an append's own transaction")

func (t ownTx) Begin(context.Context) (pgx.Tx, error) { return nil, errOwnTx }

func (t ownTx) Commit(ctx context.Context) error {
	_, err := t.c.Exec(ctx, "COMMIT")
	return err
}

func (t ownTx) Rollback(ctx context.Context) error {
	_, err := t.c.Exec(ctx, "ROLLBACK")
	return err
}

func (t ownTx) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	return t.c.CopyFrom(ctx, table, columns, src)
}

func (t ownTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.c.SendBatch(ctx, b)
}

func (t ownTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }

func (t ownTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.c.Prepare(ctx, name, sql)
}

func (t ownTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.c.Exec(ctx, sql, args...)
}

func (t ownTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.c.Query(ctx, sql, args...)
}

func (t ownTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.c.QueryRow(ctx, sql, args...)
}

func (t ownTx) Conn() *pgx.Conn { return t.c }

// AppendTx appends inside tx, which the caller commits or rolls back, so
// that other writes (inline projections, outbox rows) can commit atomically
// with the events. The semantics are those of [Store.Append], except that a
// race between identical appends is not retried: it fails with an error
// wrapping [es.ErrDuplicateEventID] (and the PostgreSQL unique violation),
// after which the caller should roll back and may retry.
//
// tx must be a READ COMMITTED transaction (else AppendTx fails with
// [ErrNotReadCommitted]) whose first write is this call: the events'
// positions are reserved together with the transaction's ID (see the
// package documentation), so AppendTx fails with [ErrNotFirstWrite] if tx
// has already been given an ID, and only one AppendTx that writes events
// may run per transaction. Writes after it are fine. Either refusal
// writes nothing. "Write" is PostgreSQL's notion: whatever gives the
// transaction an ID counts. Surprises: SELECT ... FOR UPDATE does, and so
// does nextval on a sequence now and then (each time it logs a batch of
// 32 values), so a transaction that calls nextval before AppendTx fails
// only sometimes; an INSERT ... ON CONFLICT DO NOTHING that inserted no
// row does not, nor do plain reads. The append is reported to the store's metrics when AppendTx
// returns, whatever becomes of tx afterwards.
func (s *Store) AppendTx(ctx context.Context, tx pgx.Tx, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	if err := storekit.CheckAppend(appends); err != nil {
		storekit.ObserveAppend(s.observer, time.Now(), 0, err)
		return nil, err
	}
	return s.appendEnqueueTx(ctx, tx, es.Enqueue{}, appends)
}

// AppendEnqueueTx is [Store.AppendEnqueue] inside tx, which the caller
// commits or rolls back: AppendTx that also enqueues enq's messages and
// cancels its scheduled ones. The rules of AppendTx apply, and the
// first-write rule applies to messages as to events: the outbox's
// sequence numbers are reserved together with the transaction's ID, which
// is what keeps [Store.Due] from handing out a message while an earlier
// one of its key may still commit. A transaction that has written before
// fails with [ErrNotFirstWrite] when it enqueues messages; cancellations
// alone have no such rule.
func (s *Store) AppendEnqueueTx(ctx context.Context, tx pgx.Tx, enq es.Enqueue, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	if err := storekit.CheckAppendEnqueue(enq, appends); err != nil {
		storekit.ObserveAppend(s.observer, time.Now(), 0, err)
		return nil, err
	}
	return s.appendEnqueueTx(ctx, tx, enq, appends)
}

func (s *Store) appendEnqueueTx(ctx context.Context, tx pgx.Tx, enq es.Enqueue, appends []es.StreamAppend) (res []es.AppendResult, err error) {
	start := time.Now()
	written := 0
	defer func() { storekit.ObserveAppend(s.observer, start, written, err) }()
	if err := s.checkSchema(ctx); err != nil {
		return nil, err
	}
	if err := s.setupInline(ctx); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	if err := checkCallerTx(ctx, tx, len(enq.Messages) > 0 || hasEvents(appends)); err != nil {
		return nil, err
	}
	res, written, _, err = s.appendTx(ctx, tx, enq, appends, false)
	return res, err
}

// checkCallerTx refuses a caller's transaction that an append cannot keep
// its promises in, before the append writes anything (not even the row of
// a new stream): one that is not READ COMMITTED (a serializable one would
// fail with 40001 where the append expects to wait for a lock), and, when
// the append reserves positions or outbox numbers, one that already has a
// transaction ID (see ErrNotFirstWrite).
func checkCallerTx(ctx context.Context, tx pgx.Tx, reserves bool) error {
	var fresh bool
	var isolation string
	if err := tx.QueryRow(ctx, `SELECT pg_current_xact_id_if_assigned() IS NULL, current_setting('transaction_isolation')`).
		Scan(&fresh, &isolation); err != nil {
		return fmt.Errorf("postgres: append: %w", withCtx(ctx, err))
	}
	if isolation != "read committed" {
		return fmt.Errorf("postgres: append: the transaction is %s: %w", isolation, ErrNotReadCommitted)
	}
	if reserves && !fresh {
		return ErrNotFirstWrite
	}
	return nil
}

func hasEvents(appends []es.StreamAppend) bool {
	for _, a := range appends {
		if len(a.Events) > 0 {
			return true
		}
	}
	return false
}

// appendTx is the body of every append: everything happens in tx. It
// returns the results, the number of events written (0 for a repeated
// append or one without events) and whether it wrote anything at all
// (events, messages or cancellations). appends and enq have been
// validated.
//
// When own is false, tx is open and the caller commits it. When own is
// true, tx is a connection outside any transaction (appendOnce): the first
// batch opens the transaction and the second commits it, and the
// notification is sent after COMMIT, in a transaction of its own. A
// failure, a repeat or a refusal leaves the transaction open for the
// caller to roll back.
//
// It costs two round trips:
//
//  1. (BEGIN,) reserve positions and outbox sequence numbers (when there
//     are events or messages), lock the streams, read their versions and
//     look up the request's event IDs;
//  2. insert the events, update the streams, insert the messages, cancel
//     the deadlines (, COMMIT) and notify.
func (s *Store) appendTx(ctx context.Context, tx pgx.Tx, enq es.Enqueue, appends []es.StreamAppend, own bool) ([]es.AppendResult, int, bool, error) {
	total := 0
	streamIDs := make([]string, len(appends))
	for i, a := range appends {
		streamIDs[i] = a.StreamID
		total += len(a.Events)
	}
	eventIDs := make([]string, 0, total)
	for _, a := range appends {
		for _, e := range a.Events {
			eventIDs = append(eventIDs, e.ID)
		}
	}
	msgs := len(enq.Messages)
	reserve := total > 0 || msgs > 0

	b := &pgx.Batch{}
	if own {
		b.Queue("BEGIN ISOLATION LEVEL READ COMMITTED")
	}
	if reserve {
		// Reserve total positions and msgs outbox sequence numbers while
		// holding a short advisory lock, and make sure the transaction gets
		// its ID under that same lock: this makes the order of transaction
		// IDs of appending transactions the order of their positions, which
		// ReadAll's no-skip filter relies on, and the order of their outbox
		// sequence numbers, which Due's per-key order relies on. The lock
		// is taken in a savepoint and released by rolling back to it; the
		// transaction ID and the sequence values survive the rollback (both
		// are non-transactional).
		//
		// The subquery holds volatile functions, so PostgreSQL evaluates it
		// (check that the transaction has no ID yet, take the lock) before
		// the outer select list (assign the ID, draw the numbers). CASE
		// evaluates a volatile branch only when it is taken, so a request
		// without events (or without messages) draws nothing from that
		// sequence.
		//
		// Before that, take each stream's advisory lock (in key order, so
		// that multi-stream appends cannot deadlock), so that two appends
		// to one stream also reserve their positions in the order in which
		// they take their versions: in the global order, a stream's events
		// come in version order. Advisory locks, unlike row locks, do not
		// give the transaction an ID, which must wait for the reservation.
		//
		// Every writer also takes the shared writer lock (enqueuerKey)
		// here, before it has a transaction ID, and holds it to its end:
		// the read horizon of ReadAll, Head and Due tells writers from
		// other transactions by it (see horizonCTE).
		b.Queue(`SELECT (SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest($1::bigint[]) AS u(k) ORDER BY k) AS l),
				pg_advisory_xact_lock_shared($2)`,
			s.streamKeys(streamIDs), s.enqueuerKey)
		b.Queue("SAVEPOINT es_reserve")
		b.Queue(`SELECT l.fresh, pg_current_xact_id()::text,
				coalesce(CASE WHEN $3::bigint > 0 THEN setval($2::text::regclass, nextval($2::text::regclass) + $3::bigint - 1) END, 0),
				coalesce(CASE WHEN $5::bigint > 0 THEN setval($4::text::regclass, nextval($4::text::regclass) + $5::bigint - 1) END, 0)
			FROM (SELECT pg_current_xact_id_if_assigned() IS NULL AS fresh, pg_advisory_xact_lock($1)) AS l`,
			s.reserveKey, s.positionSeq, total, s.outboxSeq, msgs)
		b.Queue("ROLLBACK TO SAVEPOINT es_reserve")
		b.Queue("RELEASE SAVEPOINT es_reserve")
	}
	// The streams are locked by their advisory locks (above, or below when
	// nothing is reserved), taken in key order so that multi-stream
	// appends cannot deadlock one another. Read committed: the versions
	// are read with a snapshot taken after the locks are granted, so they
	// are those of the last append that held them. A stream without a row
	// is at version 0; its row is written with its first events.
	if !reserve {
		b.Queue(`SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT k FROM unnest($1::bigint[]) AS u(k) ORDER BY k) AS l`,
			s.streamKeys(streamIDs))
	}
	b.Queue(`SELECT stream_id, version FROM `+s.streams+` WHERE stream_id = ANY($1::text[])`, streamIDs)
	if total > 0 {
		// Read committed: this statement's snapshot is taken after the
		// locks are granted, so it sees every event committed by an
		// append that held them before us.
		b.Queue(`SELECT event_id::text, stream_id, version, position, type, schema_version, data::text
			FROM `+s.events+` WHERE event_id = ANY($1::text[]::uuid[])`, eventIDs)
	}

	br := tx.SendBatch(ctx, b)
	lb, err := s.readLockBatch(br, own, reserve, total > 0)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, ErrNotFirstWrite) {
			return nil, 0, false, err
		}
		return nil, 0, false, fmt.Errorf("postgres: append: %w", withCtx(ctx, err))
	}
	current := lb.current

	res, replay, err := storekit.MatchStored(appends, lb.stored, func(id string) int64 { return current[id] })
	if err != nil || replay {
		// A repeated append enqueues nothing either: its messages were
		// enqueued (or skipped) by the first run.
		return res, 0, false, err
	}
	for _, a := range appends {
		if err := a.Expected.Check(a.StreamID, current[a.StreamID]); err != nil {
			return nil, 0, false, err
		}
	}
	res = make([]es.AppendResult, len(appends))
	for i, a := range appends {
		res[i] = es.AppendResult{StreamID: a.StreamID, Version: current[a.StreamID] + int64(len(a.Events))}
	}
	if total == 0 && msgs == 0 && len(enq.Cancel) == 0 {
		return res, 0, false, nil
	}
	if h := s.hooks; reserve && h != nil && h.afterReserve != nil {
		if err := h.afterReserve(ctx, tx); err != nil {
			return nil, 0, false, err
		}
	}

	b = &pgx.Batch{}
	var projected []es.Event // for the inline projections
	if total > 0 {
		projected, err = s.queueEvents(b, appends, eventIDs, current, lb.lastPosition, total, res)
		if err != nil {
			return nil, 0, false, err
		}
	}
	if err := s.queueEnqueue(b, enq, lb.lastSeq); err != nil {
		return nil, 0, false, err
	}
	if total > 0 && !own {
		// Delivered at commit, to every listener of the schema's channel.
		b.Queue(`SELECT pg_notify($1, '')`, s.schema)
	}
	if own {
		if err := s.sendCommit(ctx, tx, b, total > 0); err != nil {
			return nil, 0, false, err
		}
		return res, total, true, nil
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, 0, false, insertError(ctx, err)
	}
	if len(projected) > 0 {
		if err := s.applyInline(ctx, tx, projected); err != nil {
			return nil, 0, false, withCtx(ctx, err)
		}
	}
	return res, total, true, nil
}

// insertError describes a failed second batch of appendTx, before
// COMMIT.
func insertError(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" && pgErr.ConstraintName == "events_event_id_key" {
		return fmt.Errorf("%w: stored by a concurrent append: %w", es.ErrDuplicateEventID, err)
	}
	return fmt.Errorf("postgres: append: insert: %w", withCtx(ctx, err))
}

// sendCommit sends b, the writes of an append in its own transaction,
// followed by COMMIT, and then, when notify is set, the notification, in
// one round trip. (With a test hook before COMMIT, COMMIT goes in a
// round trip of its own, after the hook.)
//
// The notification is sent after COMMIT, in a transaction of its own, so
// that it costs the append nothing: a transaction that notifies holds
// PostgreSQL's lock on the notification queue from its pre-commit to the
// end of its commit, including the WAL flush, so appends that notify
// inside their transactions commit one at a time, each waiting for its
// own flush. The notifying transaction asks for no flush
// (synchronous_commit off, for itself only): a lost notification after
// a crash costs nothing, as listeners read again when they reconnect. If
// the append's process dies between COMMIT and the notification, the
// wake-up is lost; followers poll on a timer as well (see
// [Store.Notify]).
func (s *Store) sendCommit(ctx context.Context, tx pgx.Tx, b *pgx.Batch, notify bool) error {
	writes := b.Len()
	if h := s.hooks; h != nil && h.beforeCommit != nil {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return insertError(ctx, err)
		}
		if err := h.beforeCommit(ctx, tx); err != nil {
			return err
		}
		b, writes = &pgx.Batch{}, 0
	}
	b.Queue("COMMIT")
	if notify {
		b.Queue(`SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`, s.schema)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close() //nolint:errcheck // every result is read below
	for i := range writes + 1 {
		if _, err := br.Exec(); err != nil {
			if i < writes {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) {
					// The server refused a write: it skips the rest of
					// the batch, COMMIT too, and the transaction is
					// rolled back.
					return insertError(ctx, err)
				}
			}
			// A refused COMMIT, or one whose fate is unknown.
			return commitError(ctx, err)
		}
	}
	if notify {
		if _, err := br.Exec(); err != nil {
			// Committed: only the wake-up of the listeners is lost.
			s.logger.WarnContext(ctx, "postgres: append: notify after commit", "err", err)
		}
	}
	return nil
}

// queueEvents queues the writes of the events (total of them, ending at
// position last) and fills in res's positions. It returns the events
// for the inline projections, if the store has any.
func (s *Store) queueEvents(b *pgx.Batch, appends []es.StreamAppend, eventIDs []string, current map[string]int64,
	last int64, total int, res []es.AppendResult) ([]es.Event, error) {
	var (
		positions = make([]int64, 0, total)
		streams   = make([]string, 0, total)
		versions  = make([]int64, 0, total)
		types     = make([]string, 0, total)
		schemas   = make([]int32, 0, total)
		data      = make([]string, 0, total)
		metadata  = make([]string, 0, total)

		updated        []string
		updatedVersion []int64
	)
	now, err := storekit.RecordedAt(s.clock)
	if err != nil {
		return nil, err
	}
	var projected []es.Event
	if len(s.inline) > 0 {
		projected = make([]es.Event, 0, total)
	}
	pos := last - int64(total) + 1
	for i, a := range appends {
		if len(a.Events) == 0 {
			continue
		}
		v := current[a.StreamID]
		for _, e := range a.Events {
			v++
			md, err := json.Marshal(e.Metadata)
			if err != nil {
				return nil, fmt.Errorf("postgres: append: metadata of event %s: %w", e.ID, err)
			}
			positions = append(positions, pos)
			streams = append(streams, a.StreamID)
			versions = append(versions, v)
			types = append(types, e.Type)
			schemas = append(schemas, int32(e.SchemaVersion))
			data = append(data, string(e.Data))
			metadata = append(metadata, string(md))
			if projected != nil {
				projected = append(projected, es.Event{
					ID: e.ID, StreamID: a.StreamID, Version: v, Position: pos, Type: e.Type,
					SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata, RecordedAt: now,
				})
			}
			pos++
		}
		res[i].Position = pos - 1
		updated = append(updated, a.StreamID)
		updatedVersion = append(updatedVersion, v)
	}

	b.Queue(`INSERT INTO `+s.events+`
			(position, stream_id, version, event_id, type, schema_version, data, metadata, recorded_at)
		SELECT p, s, v, id::uuid, t, sv, d::jsonb, m::jsonb, $9
		FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[])
			AS u(p, s, v, id, t, sv, d, m)`,
		positions, streams, versions, eventIDs, types, schemas, data, metadata, now)
	// A new stream gets its row here; the advisory stream locks keep
	// every other append of these streams waiting until we end.
	b.Queue(`INSERT INTO `+s.streams+` (stream_id, version)
		SELECT id, v FROM unnest($1::text[], $2::bigint[]) AS u(id, v) ORDER BY id
		ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version`, updated, updatedVersion)
	return projected, nil
}

// lockBatch is what the first batch of appendTx found.
type lockBatch struct {
	current      map[string]int64    // stream ID -> version, locked
	stored       map[string]es.Event // the request's event IDs already stored
	lastPosition int64               // the last reserved position
	lastSeq      int64               // the last reserved outbox sequence number
}

// readLockBatch reads the results of the first batch of appendTx: BEGIN
// (when begun), the reservation (when reserved), the locked stream
// versions, and the stored
// events among the request's IDs (when looked up).
func (s *Store) readLockBatch(br pgx.BatchResults, begun, reserved, lookup bool) (lockBatch, error) {
	var lb lockBatch
	if begun {
		if _, err := br.Exec(); err != nil { // BEGIN
			return lb, err
		}
	}
	if reserved {
		if _, err := br.Exec(); err != nil { // stream locks
			return lb, err
		}
		if _, err := br.Exec(); err != nil { // SAVEPOINT
			return lb, err
		}
		var (
			fresh bool
			xid   string
		)
		if err := br.QueryRow().Scan(&fresh, &xid, &lb.lastPosition, &lb.lastSeq); err != nil {
			return lb, err
		}
		if !fresh {
			return lb, ErrNotFirstWrite
		}
		for range 2 { // ROLLBACK TO, RELEASE
			if _, err := br.Exec(); err != nil {
				return lb, err
			}
		}
	}
	if !reserved {
		if _, err := br.Exec(); err != nil { // stream locks
			return lb, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return lb, err
	}
	lb.current = make(map[string]int64)
	var (
		id string
		v  int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &v}, func() error { lb.current[id] = v; return nil }); err != nil {
		return lb, err
	}
	if !lookup {
		return lb, nil
	}
	rows, err = br.Query()
	if err != nil {
		return lb, err
	}
	lb.stored = make(map[string]es.Event)
	var (
		e    es.Event
		data string
	)
	if _, err := pgx.ForEachRow(rows, []any{&e.ID, &e.StreamID, &e.Version, &e.Position, &e.Type, &e.SchemaVersion, &data},
		func() error {
			e.Data = json.RawMessage(data)
			lb.stored[e.ID] = e
			return nil
		}); err != nil {
		return lb, err
	}
	return lb, nil
}

// streamKeys returns the advisory lock keys of streams, sorted and
// without repeats.
func (s *Store) streamKeys(streamIDs []string) []int64 {
	keys := make([]int64, len(streamIDs))
	for i, id := range streamIDs {
		keys[i] = lockKey("stream\x00"+id, s.schema)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// withCtx makes an error caused by the context's end match it with
// errors.Is, whatever form the driver reported it in.
// commitError describes a failed COMMIT. An answer from the server (a
// *pgconn.PgError) means the transaction was rolled back; anything else
// (the context ended, the connection broke) leaves the outcome unknown.
func commitError(ctx context.Context, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return fmt.Errorf("postgres: append: commit: %w", err)
	}
	return fmt.Errorf("postgres: append: commit: %w: %w", es.ErrOutcomeUnknown, withCtx(ctx, err))
}

func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}
