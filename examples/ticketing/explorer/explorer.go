// Package explorer keeps the read model of the ticketing example's event
// explorer: every stream with its category, version and last position,
// and every event's correlation and causation IDs. With it the explorer
// lists streams by category, page by page, and follows one purchase
// across the modules by its correlation ID, with an index lookup instead
// of a scan of the whole log per request.
//
// The projection is portable (sqlprojection), so it runs on SQLite and
// PostgreSQL alike, and it decodes no event: it reads only the envelope
// (stream, version, position, type, metadata), so an event type it has
// never heard of is listed like any other. The events' data stays in the
// event store, which the explorer reads stream by stream.
package explorer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
)

// Name is the projection's name: its checkpoint and its locks.
const Name = "explorer"

// timeLayout is how times are kept: RFC 3339 in UTC with nanoseconds,
// which is portable (TEXT) and sorts as time does.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// Projection returns the explorer's read model: the tables
// explorer_streams (one row per stream) and explorer_events (one row per
// event that carries a correlation ID).
func Projection() sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   Name,
		Tables: []string{"explorer_streams", "explorer_events"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("explorer_streams")+` (
				stream_id TEXT PRIMARY KEY, category TEXT NOT NULL, version BIGINT NOT NULL,
				last_position BIGINT NOT NULL, updated_at TEXT NOT NULL);
			CREATE INDEX IF NOT EXISTS `+t.Index("explorer_streams", "by_category")+` ON `+t.Name("explorer_streams")+` (category, stream_id);
			CREATE TABLE IF NOT EXISTS `+t.Name("explorer_events")+` (
				position BIGINT PRIMARY KEY, event_id TEXT NOT NULL, stream_id TEXT NOT NULL, version BIGINT NOT NULL,
				type TEXT NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL, recorded_at TEXT NOT NULL);
			CREATE INDEX IF NOT EXISTS `+t.Index("explorer_events", "by_correlation")+` ON `+t.Name("explorer_events")+` (correlation_id, position);
			CREATE INDEX IF NOT EXISTS `+t.Index("explorer_events", "by_stream")+` ON `+t.Name("explorer_events")+` (stream_id, version)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			at := e.RecordedAt.UTC().Format(timeLayout)
			// Events of a stream come in version order, but a replay after
			// a rolled-back batch may bring one again: keep the highest.
			_, err := tx.Exec(ctx, `INSERT INTO `+t.Name("explorer_streams")+` AS s (stream_id, category, version, last_position, updated_at)
				VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, last_position = excluded.last_position,
					updated_at = excluded.updated_at WHERE s.version < excluded.version`,
				e.StreamID, es.Category(e.StreamID), e.Version, e.Position, at)
			if err != nil || e.Metadata.CorrelationID == "" {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("explorer_events")+`
				(position, event_id, stream_id, version, type, correlation_id, causation_id, recorded_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (position) DO NOTHING`,
				e.Position, e.ID, e.StreamID, e.Version, e.Type, e.Metadata.CorrelationID, e.Metadata.CausationID, at)
			return err
		},
	}
}

// Stream is a stream as the explorer lists it.
type Stream struct {
	ID           string    `json:"id"`
	Category     string    `json:"category"`
	Version      int64     `json:"version"`
	LastPosition int64     `json:"last_position"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Streams returns up to limit streams whose IDs sort after after, in ID
// order, of one category or of all when category is empty: a page of the
// explorer's list, the next one starting after the last ID of this one.
func Streams(ctx context.Context, db *sql.DB, category, after string, limit int) ([]Stream, error) {
	const cols = `SELECT stream_id, category, version, last_position, updated_at FROM explorer_streams`
	// SQLite numbers $N parameters in the order they appear, so they
	// appear in order.
	q, args := cols+` WHERE stream_id > $1 ORDER BY stream_id LIMIT $2`, []any{after, limit}
	if category != "" {
		q, args = cols+` WHERE category = $1 AND stream_id > $2 ORDER BY stream_id LIMIT $3`, []any{category, after, limit}
	}
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("explorer: streams: %w", err)
	}
	defer rows.Close()
	var out []Stream
	for rows.Next() {
		var s Stream
		var at string
		if err := rows.Scan(&s.ID, &s.Category, &s.Version, &s.LastPosition, &at); err != nil {
			return nil, fmt.Errorf("explorer: streams: %w", err)
		}
		s.UpdatedAt, _ = time.Parse(timeLayout, at)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("explorer: streams: %w", err)
	}
	return out, nil
}

// Categories returns the streams' categories, in order.
func Categories(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT DISTINCT category FROM explorer_streams ORDER BY category`)
	if err != nil {
		return nil, fmt.Errorf("explorer: categories: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("explorer: categories: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("explorer: categories: %w", err)
	}
	return out, nil
}

// Link is an event as the explorer knows it: its place and what caused it.
type Link struct {
	Position      int64     `json:"position"`
	EventID       string    `json:"event_id"`
	StreamID      string    `json:"stream_id"`
	Version       int64     `json:"version"`
	Type          string    `json:"type"`
	CorrelationID string    `json:"correlation_id"`
	CausationID   string    `json:"causation_id"`
	RecordedAt    time.Time `json:"recorded_at"`
}

// Correlated returns up to limit events of a correlation ID, in global
// order.
func Correlated(ctx context.Context, db *sql.DB, correlationID string, limit int) ([]Link, error) {
	rows, err := db.QueryContext(ctx, `SELECT position, event_id, stream_id, version, type, correlation_id, causation_id, recorded_at
		FROM explorer_events WHERE correlation_id = $1 ORDER BY position LIMIT $2`, correlationID, limit)
	if err != nil {
		return nil, fmt.Errorf("explorer: correlation %s: %w", correlationID, err)
	}
	defer rows.Close()
	var out []Link
	for rows.Next() {
		var l Link
		var at string
		if err := rows.Scan(&l.Position, &l.EventID, &l.StreamID, &l.Version, &l.Type, &l.CorrelationID, &l.CausationID, &at); err != nil {
			return nil, fmt.Errorf("explorer: correlation %s: %w", correlationID, err)
		}
		l.RecordedAt, _ = time.Parse(timeLayout, at)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("explorer: correlation %s: %w", correlationID, err)
	}
	return out, nil
}

// ErrNotFound is returned for a stream the explorer does not know.
var ErrNotFound = errors.New("explorer: not found")

// StreamCorrelation returns the correlation ID of a stream's first event:
// for an order's stream, the purchase that placed it. It fails with
// ErrNotFound if the stream has no correlated event.
func StreamCorrelation(ctx context.Context, db *sql.DB, streamID string) (string, error) {
	var id string
	err := db.QueryRowContext(ctx, `SELECT correlation_id FROM explorer_events WHERE stream_id = $1 ORDER BY version LIMIT 1`,
		streamID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: stream %s", ErrNotFound, streamID)
	}
	if err != nil {
		return "", fmt.Errorf("explorer: stream %s: %w", streamID, err)
	}
	return id, nil
}

// StreamExists reports whether the explorer knows a stream.
func StreamExists(ctx context.Context, db *sql.DB, streamID string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM explorer_streams WHERE stream_id = $1`, streamID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("explorer: stream %s: %w", streamID, err)
	}
	return n > 0, nil
}

// CorrelationExists reports whether any event carries a correlation ID.
func CorrelationExists(ctx context.Context, db *sql.DB, correlationID string) (bool, error) {
	l, err := Correlated(ctx, db, correlationID, 1)
	return len(l) > 0, err
}
