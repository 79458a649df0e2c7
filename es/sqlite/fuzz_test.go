package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// FuzzReadStoredRow stores arbitrary bytes where the store keeps an
// event's data, metadata and recording time, as another tool might, and
// reads them back: a read must never panic, and must either return the
// event or fail with es.ErrUnreadableEvent.
func FuzzReadStoredRow(f *testing.F) {
	f.Add([]byte(`{"a":1}`), []byte(`{"correlation_id":"c"}`), "2026-01-01T00:00:00.000000000Z")
	f.Add([]byte(`{}`), []byte(`{"extra":5}`), "2026-01-01T00:00:00.000000000Z")
	f.Add([]byte(`{}`), []byte(`null`), "not a time")
	f.Add([]byte("\xff"), []byte(`{"extra":{"k":"\u0000"}}`), "10000-01-01T00:00:00.000000000Z")
	s, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data, metadata []byte, recordedAt string) {
		id := es.NewID()
		stream := "fuzz-" + id
		if err := s.WriteTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO es_streams (stream_id, version) VALUES (?, 1)`, stream); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO es_events (event_id, stream_id, version, category, type, schema_version, data, metadata, recorded_at)
				VALUES (?, ?, 1, 'fuzz', 'T', 1, ?, ?, ?)`, id, stream, string(data), string(metadata), recordedAt)
			return err
		}); err != nil {
			t.Skip("the row itself cannot be stored:", err)
		}
		evs, err := es.Collect(s.ReadStream(ctx, stream, es.StreamQuery{}))
		switch {
		case err != nil && !errors.Is(err, es.ErrUnreadableEvent):
			t.Fatalf("read failed with %v, want the event or ErrUnreadableEvent", err)
		case err == nil && (len(evs) != 1 || evs[0].ID != id):
			t.Fatalf("read %d events", len(evs))
		}
	})
}
