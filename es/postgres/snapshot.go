package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// SaveSnapshot implements [es.SnapshotStore].
func (s *Store) SaveSnapshot(ctx context.Context, snap es.Snapshot) error {
	if err := storekit.CheckSnapshot(snap); err != nil {
		return fmt.Errorf("postgres: save snapshot: %w", err)
	}
	if err := s.checkSchema(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO `+s.snapshots+` (stream_id, name, version, state_version, data)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (stream_id, name) DO UPDATE SET version = excluded.version,
			state_version = excluded.state_version, data = excluded.data`,
		snap.StreamID, snap.Name, snap.Version, snap.StateVersion, string(snap.Data))
	if err != nil {
		return fmt.Errorf("postgres: save snapshot of %s: %w", snap.StreamID, withCtx(ctx, err))
	}
	return nil
}

// LoadSnapshot implements [es.SnapshotStore].
func (s *Store) LoadSnapshot(ctx context.Context, streamID, name string) (es.Snapshot, bool, error) {
	if err := ctx.Err(); err != nil {
		return es.Snapshot{}, false, err
	}
	if storekit.CheckStreamID(streamID) != nil || storekit.CheckStreamID(name) != nil {
		return es.Snapshot{}, false, nil // no save could have written it
	}
	if err := s.checkSchema(ctx); err != nil {
		return es.Snapshot{}, false, err
	}
	snap := es.Snapshot{StreamID: streamID, Name: name}
	var data string
	err := s.pool.QueryRow(ctx, `SELECT version, state_version, data FROM `+s.snapshots+` WHERE stream_id = $1 AND name = $2`,
		streamID, name).Scan(&snap.Version, &snap.StateVersion, &data)
	if errors.Is(err, pgx.ErrNoRows) {
		return es.Snapshot{}, false, nil
	}
	if err != nil {
		return es.Snapshot{}, false, fmt.Errorf("postgres: load snapshot of %s: %w", streamID, withCtx(ctx, err))
	}
	snap.Data = []byte(data)
	return snap, true, nil
}

// FindEvent implements [es.SnapshotStore].
func (s *Store) FindEvent(ctx context.Context, eventID string) (string, int64, bool, error) {
	if err := ctx.Err(); err != nil {
		return "", 0, false, err
	}
	if !es.ValidID(eventID) {
		return "", 0, false, nil // no append could have stored it
	}
	if err := s.checkSchema(ctx); err != nil {
		return "", 0, false, err
	}
	var (
		stream  string
		version int64
	)
	err := s.pool.QueryRow(ctx, `SELECT stream_id, version FROM `+s.events+` WHERE event_id = $1`, eventID).Scan(&stream, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, false, nil
	}
	if err != nil {
		return "", 0, false, fmt.Errorf("postgres: find event %s: %w", eventID, withCtx(ctx, err))
	}
	return stream, version, true, nil
}
