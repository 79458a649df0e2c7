package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// SaveSnapshot implements [es.SnapshotStore].
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := storekit.CheckSnapshot(snap); err != nil {
		return fmt.Errorf("sqlite: save snapshot: %w", err)
	}
	err := s.withWriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO es_snapshots (stream_id, name, version, state_version, data)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (stream_id, name) DO UPDATE SET version = excluded.version,
				state_version = excluded.state_version, data = excluded.data`,
			snap.StreamID, snap.Name, snap.Version, snap.StateVersion, string(snap.Data))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: save snapshot of %s: %w", snap.StreamID, err)
	}
	return nil
}

// LoadSnapshot implements [es.SnapshotStore].
func (s *Store) LoadSnapshot(ctx context.Context, streamID, name string) (es.Snapshot, bool, error) {
	snap := es.Snapshot{StreamID: streamID, Name: name}
	var data string
	err := s.retryBusy(ctx, func() error {
		return s.readers.QueryRowContext(ctx, `SELECT version, state_version, data FROM es_snapshots WHERE stream_id = ? AND name = ?`,
			streamID, name).Scan(&snap.Version, &snap.StateVersion, &data)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return es.Snapshot{}, false, nil
	}
	if err != nil {
		return es.Snapshot{}, false, fmt.Errorf("sqlite: load snapshot of %s: %w", streamID, err)
	}
	snap.Data = []byte(data)
	return snap, true, nil
}

// FindEvent implements [es.SnapshotStore].
func (s *Store) FindEvent(ctx context.Context, eventID string) (string, int64, bool, error) {
	var (
		stream  string
		version int64
	)
	err := s.retryBusy(ctx, func() error {
		return s.readers.QueryRowContext(ctx, `SELECT stream_id, version FROM es_events WHERE event_id = ?`, eventID).Scan(&stream, &version)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("sqlite: find event %s: %w", eventID, err)
	}
	return stream, version, true, nil
}
