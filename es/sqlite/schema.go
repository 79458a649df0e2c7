package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"esgo.dev/es"
)

// schemaVersion is the version of the tables this release writes, kept in
// the file's user_version: a file written by a newer release is refused,
// one written by an older release is brought up to date.
const schemaVersion = 3 // 2: es_snapshots; 3: es_outbox_now and es_outbox_later

// migrate creates or updates the store's tables in tx, an IMMEDIATE
// transaction, and records the schema version.
func migrate(ctx context.Context, tx *sql.Tx) error {
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: the file is at schema version %d, this release knows %d", es.ErrNewerSchema, v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return err
	}
	if v < schemaVersion {
		// PRAGMA takes no parameters; the value is a constant.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", schemaVersion)); err != nil {
			return err
		}
	}
	return nil
}

// schema creates the store's tables. Every statement is idempotent, and
// Open runs them in one IMMEDIATE transaction, so two processes opening a
// new file at the same moment simply take turns.
//
// The tables carry an es_ prefix because the file is meant to be shared
// with the application's own tables (read models updated in the same
// transaction as the append), where a bare "events" would clash.
//
// Tables are STRICT so that a value of the wrong type is refused rather
// than silently stored.
const schema = `
CREATE TABLE IF NOT EXISTS es_streams (
	stream_id TEXT    NOT NULL PRIMARY KEY,
	version   INTEGER NOT NULL CHECK (version >= 0)
) STRICT, WITHOUT ROWID;

-- position is the global position. AUTOINCREMENT makes SQLite never reuse
-- a position, even one whose row is gone, so a reader's checkpoint can
-- never point past an event written later.
CREATE TABLE IF NOT EXISTS es_events (
	position       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	event_id       TEXT    NOT NULL UNIQUE,
	stream_id      TEXT    NOT NULL REFERENCES es_streams (stream_id),
	version        INTEGER NOT NULL CHECK (version >= 1),
	category       TEXT    NOT NULL,
	type           TEXT    NOT NULL,
	schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
	data           TEXT    NOT NULL,
	metadata       TEXT,
	recorded_at    TEXT    NOT NULL,
	UNIQUE (stream_id, version)
) STRICT;

CREATE INDEX IF NOT EXISTS es_events_category ON es_events (category, position);
CREATE INDEX IF NOT EXISTS es_events_type ON es_events (type, position);

-- Checkpoints of subscriptions and async projections: the position of the
-- last event handled.
CREATE TABLE IF NOT EXISTS es_checkpoints (
	name       TEXT    NOT NULL PRIMARY KEY,
	position   INTEGER NOT NULL CHECK (position >= 0),
	updated_at TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- Rebuilds of projections in progress: the suffix of the fresh tables'
-- names and the position of the last event applied to them, so that a
-- rebuild interrupted by a crash resumes where it was.
CREATE TABLE IF NOT EXISTS es_rebuilds (
	name       TEXT    NOT NULL PRIMARY KEY,
	suffix     TEXT    NOT NULL,
	position   INTEGER NOT NULL CHECK (position >= 0),
	updated_at TEXT    NOT NULL
) STRICT, WITHOUT ROWID;

-- Inline projections whose tables Open created and has yet to fill from
-- the events stored before them (see Config.Inline).
CREATE TABLE IF NOT EXISTS es_inline_fills (
	name TEXT NOT NULL PRIMARY KEY
) STRICT, WITHOUT ROWID;

-- The transactional outbox: messages written in the same transaction as
-- the events that cause them, delivered by es.Relay. seq is the outbox
-- order (AUTOINCREMENT: never reused). bucket is es.MessageBucket(key),
-- computed in Go, so a relay worker selects its buckets with an index.
-- Times are unix nanoseconds (UTC), which compare exactly; deliver_at is
-- NULL for a message to deliver at once, retry_at NULL until a delivery
-- failed.
CREATE TABLE IF NOT EXISTS es_outbox (
	seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	message_id     TEXT    NOT NULL UNIQUE,
	key            TEXT    NOT NULL,
	bucket         INTEGER NOT NULL CHECK (bucket >= 0),
	type           TEXT    NOT NULL,
	schema_version INTEGER NOT NULL CHECK (schema_version >= 1),
	data           TEXT    NOT NULL,
	metadata       TEXT,
	deliver_at     INTEGER,
	created_at     INTEGER NOT NULL,
	attempts       INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	retry_at       INTEGER,
	parked         INTEGER NOT NULL DEFAULT 0 CHECK (parked IN (0, 1)),
	delivered_at   INTEGER,
	cancelled_at   INTEGER,
	last_error     TEXT
) STRICT;

-- Due: the pending messages of a worker's buckets to deliver at once, in
-- outbox order, and the deadlines by due time, apart: deadlines scheduled
-- for later (a payment's give-up time, a day away, for every payment) then
-- cost Due nothing however many wait, and neither do delivered messages.
-- Schema version 2 had one index of both, es_outbox_pending.
DROP INDEX IF EXISTS es_outbox_pending;
CREATE INDEX IF NOT EXISTS es_outbox_now ON es_outbox (bucket, seq)
	WHERE delivered_at IS NULL AND cancelled_at IS NULL AND deliver_at IS NULL;
CREATE INDEX IF NOT EXISTS es_outbox_later ON es_outbox (bucket, deliver_at)
	WHERE delivered_at IS NULL AND cancelled_at IS NULL AND deliver_at IS NOT NULL;
-- Due's holdback check: the pending messages that failed, by key.
CREATE INDEX IF NOT EXISTS es_outbox_held ON es_outbox (key, seq)
	WHERE delivered_at IS NULL AND cancelled_at IS NULL AND retry_at IS NOT NULL;

-- Snapshots of stream states, kept by command handlers (es.SnapshotStore):
-- one per stream and state name, replaced by each save.
CREATE TABLE IF NOT EXISTS es_snapshots (
	stream_id     TEXT    NOT NULL,
	name          TEXT    NOT NULL,
	version       INTEGER NOT NULL CHECK (version >= 1),
	state_version INTEGER NOT NULL,
	data          TEXT    NOT NULL,
	PRIMARY KEY (stream_id, name)
) STRICT, WITHOUT ROWID;

-- The inbox: the messages each consumer has handled, recorded in the
-- consumer's own transaction (Store.InboxTx).
CREATE TABLE IF NOT EXISTS es_inbox (
	consumer   TEXT    NOT NULL,
	message_id TEXT    NOT NULL,
	handled_at INTEGER NOT NULL,
	PRIMARY KEY (consumer, message_id)
) STRICT, WITHOUT ROWID;
`
