package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

const (
	insertEvents = `INSERT INTO es_events
		(event_id, stream_id, version, category, type, schema_version, data, metadata, recorded_at)
		VALUES ` + eventValues
	eventValues = `(?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// insertChunk rows per INSERT and lookupChunk IDs per SELECT keep
	// statements well below SQLite's limit of 32,766 parameters.
	insertChunk = 100
	lookupChunk = 500
)

const eventColumns = `position, event_id, stream_id, version, type, schema_version, data, metadata, recorded_at`

// statements are prepared once per store; database/sql re-prepares them
// on a connection when needed.
type statements struct {
	// writer
	eventByID     *sql.Stmt
	streamVersion *sql.Stmt
	upsertStream  *sql.Stmt
	insertEvent   *sql.Stmt
	// readers
	streamForward  *sql.Stmt
	streamBackward *sql.Stmt
	maxPosition    *sql.Stmt
}

func (st *statements) prepare(ctx context.Context, writer, readers *sql.DB) error {
	var err error
	prep := func(db *sql.DB, dst **sql.Stmt, query string) {
		if err == nil {
			*dst, err = db.PrepareContext(ctx, query)
		}
	}
	prep(writer, &st.eventByID, `SELECT `+eventColumns+` FROM es_events WHERE event_id = ?`)
	prep(writer, &st.streamVersion, `SELECT version FROM es_streams WHERE stream_id = ?`)
	prep(writer, &st.upsertStream, `INSERT INTO es_streams (stream_id, version) VALUES (?, ?)
		ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version`)
	prep(writer, &st.insertEvent, insertEvents)
	prep(readers, &st.streamForward, `SELECT `+eventColumns+` FROM es_events
		WHERE stream_id = ? AND version >= ? ORDER BY version LIMIT ?`)
	prep(readers, &st.streamBackward, `SELECT `+eventColumns+` FROM es_events
		WHERE stream_id = ? AND version <= ? ORDER BY version DESC LIMIT ?`)
	prep(readers, &st.maxPosition, `SELECT coalesce(max(position), 0) FROM es_events`)
	return err
}

func (st *statements) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{st.eventByID, st.streamVersion, st.upsertStream, st.insertEvent,
		st.streamForward, st.streamBackward, st.maxPosition} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}

// Append implements [es.Store]. It runs in one IMMEDIATE transaction on
// the writer connection; see appendTx for what happens inside. It is
// AppendEnqueue without messages.
func (s *Store) Append(ctx context.Context, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	return s.AppendEnqueue(ctx, es.Enqueue{}, appends...)
}

// AppendEnqueue implements [es.Outbox]: the events and the outbox rows
// are written in the same IMMEDIATE transaction, so a message is stored
// if and only if the events that cause it are. A repeated append (the
// same event IDs, see [storekit.MatchStored]) enqueues nothing; a message whose
// ID is already in es_outbox is skipped.
func (s *Store) AppendEnqueue(ctx context.Context, enq es.Enqueue, appends ...es.StreamAppend) (res []es.AppendResult, err error) {
	start := time.Now()
	n := 0
	defer func() { storekit.ObserveAppend(s.cfg.Observer, start, n, err) }()
	if err := storekit.CheckAppendEnqueue(enq, appends); err != nil {
		return nil, err
	}
	err = s.withWriteTx(ctx, func(tx *sql.Tx) error {
		var (
			err    error
			replay bool
		)
		res, n, replay, err = s.appendTx(ctx, tx, appends)
		if err != nil || replay {
			return err
		}
		return s.enqueueTx(ctx, tx, enq)
	})
	switch {
	case err == nil:
	case errors.Is(err, es.ErrConcurrency), errors.Is(err, es.ErrDuplicateEventID):
		return nil, err // already says what and where
	case ctx.Err() != nil:
		// database/sql and SQLite report a cancelled call in several ways
		// ("interrupted", sql.ErrTxDone); the cause is what callers test.
		return nil, fmt.Errorf("sqlite: append: %w", ctx.Err())
	default:
		return nil, fmt.Errorf("sqlite: append: %w", err)
	}
	if n > 0 {
		s.notify.Broadcast()
	}
	return res, nil
}

// appendTx is the body of an append, inside the caller's write
// transaction: it returns the results, the number of events written and
// whether the append repeats one already stored (then nothing is written).
// It takes the *sql.Tx so that work that must commit with the events
// (inline projections, outbox rows) can run in the same transaction.
//
// Global order: SQLite has one writer at a time per file (across processes
// too), and this transaction holds the write lock from BEGIN IMMEDIATE to
// COMMIT, so positions are assigned in commit order. A reader that has seen
// position p has therefore seen every event below p, and ReadAll from a
// checkpoint never skips an event that commits later.
func (s *Store) appendTx(ctx context.Context, tx *sql.Tx, appends []es.StreamAppend) ([]es.AppendResult, int, bool, error) {
	// Event IDs already stored decide between a normal append, a replay
	// and a duplicate, before any expectation is checked.
	stored, err := s.storedEvents(ctx, tx, appends)
	if err != nil {
		return nil, 0, false, err
	}

	versionOf := tx.StmtContext(ctx, s.stmts.streamVersion)
	current := make(map[string]int64, len(appends))
	for _, a := range appends {
		var v int64
		err := versionOf.QueryRowContext(ctx, a.StreamID).Scan(&v)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, 0, false, fmt.Errorf("read version of %s: %w", a.StreamID, err)
		}
		current[a.StreamID] = v
	}

	res, replay, err := storekit.MatchStored(appends, stored, func(id string) int64 { return current[id] })
	if err != nil || replay {
		return res, 0, replay, err
	}
	for _, a := range appends {
		if err := a.Expected.Check(a.StreamID, current[a.StreamID]); err != nil {
			return nil, 0, false, err
		}
	}

	upsert := tx.StmtContext(ctx, s.stmts.upsertStream)
	insert := tx.StmtContext(ctx, s.stmts.insertEvent)
	recordedAt, err := storekit.RecordedAt(s.cfg.Clock)
	if err != nil {
		return nil, 0, false, err
	}
	now := recordedAt.Format(timeLayout)
	// Inline projections see the events as a later read would: with their
	// positions and the recording time as stored.
	var appended []es.Event
	res = make([]es.AppendResult, len(appends))
	n := 0
	for i, a := range appends {
		v := current[a.StreamID]
		res[i] = es.AppendResult{StreamID: a.StreamID, Version: v}
		if len(a.Events) == 0 {
			continue
		}
		// The stream row first: events reference it.
		if _, err := upsert.ExecContext(ctx, a.StreamID, v+int64(len(a.Events))); err != nil {
			return nil, 0, false, fmt.Errorf("update stream %s: %w", a.StreamID, err)
		}
		category := es.Category(a.StreamID)
		for evs := range slices.Chunk(a.Events, insertChunk) {
			args := make([]any, 0, 9*len(evs))
			for _, e := range evs {
				v++
				var md any // NULL when empty
				if !e.Metadata.IsZero() {
					b, err := json.Marshal(e.Metadata)
					if err != nil {
						return nil, 0, false, fmt.Errorf("encode metadata of event %s: %w", e.ID, err)
					}
					md = string(b)
				}
				args = append(args, e.ID, a.StreamID, v, category, e.Type, e.SchemaVersion, string(e.Data), md, now)
			}
			var r sql.Result
			if len(evs) == 1 {
				r, err = insert.ExecContext(ctx, args...)
			} else {
				// One statement for many rows saves a round trip through
				// cgo and database/sql per event. Rows are inserted in
				// VALUES order, so positions follow versions.
				r, err = tx.ExecContext(ctx, insertEvents+strings.Repeat(", "+eventValues, len(evs)-1), args...)
			}
			if err != nil {
				return nil, 0, false, fmt.Errorf("insert events of %s: %w", a.StreamID, err)
			}
			// The rowid of the last row a statement inserted.
			if res[i].Position, err = r.LastInsertId(); err != nil {
				return nil, 0, false, fmt.Errorf("insert events of %s: %w", a.StreamID, err)
			}
			if len(s.cfg.Inline) > 0 {
				// One statement's rows get consecutive positions: the
				// transaction holds the write lock and AUTOINCREMENT
				// takes max+1 for each row.
				first, firstVersion := res[i].Position-int64(len(evs)-1), v-int64(len(evs)-1)
				for k, e := range evs {
					md := es.Metadata{} // as read back: nothing when empty
					if !e.Metadata.IsZero() {
						md = e.Metadata
						md.Extra = maps.Clone(md.Extra)
					}
					appended = append(appended, es.Event{
						ID: e.ID, StreamID: a.StreamID, Version: firstVersion + int64(k), Position: first + int64(k),
						Type: e.Type, SchemaVersion: e.SchemaVersion, Data: slices.Clone(e.Data),
						Metadata: md, RecordedAt: recordedAt,
					})
				}
			}
		}
		res[i].Version = v
		n += len(a.Events)
	}
	if err := s.applyInline(ctx, tx, appended); err != nil {
		return nil, 0, false, err
	}
	return res, n, false, nil
}

// storedEvents returns the events already stored under the request's
// event IDs, looked up lookupChunk IDs per query.
func (s *Store) storedEvents(ctx context.Context, tx *sql.Tx, appends []es.StreamAppend) (map[string]es.Event, error) {
	var ids []any
	for _, a := range appends {
		for _, e := range a.Events {
			ids = append(ids, e.ID)
		}
	}
	stored := make(map[string]es.Event)
	if len(ids) == 1 { // the common case, with its prepared statement
		e, err := scanEvent(tx.StmtContext(ctx, s.stmts.eventByID).QueryRowContext(ctx, ids[0]))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("look up event %s: %w", ids[0], err)
		default:
			stored[e.ID] = e
		}
		return stored, nil
	}
	for chunk := range slices.Chunk(ids, lookupChunk) {
		err := func() error {
			rows, err := tx.QueryContext(ctx, `SELECT `+eventColumns+` FROM es_events WHERE event_id IN (?`+
				strings.Repeat(", ?", len(chunk)-1)+`)`, chunk...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				e, err := scanEvent(rows)
				if err != nil {
					return err
				}
				stored[e.ID] = e
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, fmt.Errorf("look up events: %w", err)
		}
	}
	return stored, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanEvent(row scanner) (es.Event, error) {
	var (
		e        es.Event
		data, md []byte
		recorded string
	)
	if err := row.Scan(&e.Position, &e.ID, &e.StreamID, &e.Version, &e.Type, &e.SchemaVersion, &data, &md, &recorded); err != nil {
		return es.Event{}, err
	}
	e.Data = data
	if md != nil {
		if err := storekit.DecodeMetadata(md, &e.Metadata); err != nil {
			return es.Event{}, fmt.Errorf("%w: position %d, ID %s: metadata: %v", es.ErrUnreadableEvent, e.Position, e.ID, err)
		}
	}
	t, err := parseTime(recorded)
	if err != nil {
		return es.Event{}, fmt.Errorf("%w: position %d, ID %s: recorded_at: %v", es.ErrUnreadableEvent, e.Position, e.ID, err)
	}
	e.RecordedAt = t.UTC()
	return e, nil
}

// parseTime is time.Parse(timeLayout, v), without its generality in the
// common case: v exactly as the store writes it (fixed width, UTC), with
// every field in range. Anything else goes to time.Parse.
func parseTime(v string) (time.Time, error) {
	if len(v) != len(timeLayout) || v[4] != '-' || v[7] != '-' || v[10] != 'T' || v[13] != ':' || v[16] != ':' || v[19] != '.' || v[29] != 'Z' {
		return time.Parse(timeLayout, v)
	}
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := v[i]
			if c < '0' || c > '9' {
				return -1
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec, nsec := num(11, 13), num(14, 16), num(17, 19), num(20, 29)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 ||
		sec < 0 || sec > 59 || nsec < 0 || day > daysIn(time.Month(month), year) {
		return time.Parse(timeLayout, v)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC), nil
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
