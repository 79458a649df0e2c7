package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
)

// openFile opens a store on a new file in a temporary directory and closes
// it when the test ends.
func openFile(t testing.TB, cfg sqlite.Config) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s, path
}

func TestConformance(t *testing.T) {
	estest.TestStore(t, func(t *testing.T) es.Store {
		s, _ := openFile(t, sqlite.Config{})
		return s
	})
}

func TestConformanceMemory(t *testing.T) {
	estest.TestStore(t, func(t *testing.T) es.Store {
		s, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestOpenRefusesAFileOfANewerRelease(t *testing.T) {
	s, path := openFile(t, sqlite.Config{})
	if err := s.WriteTx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec("PRAGMA user_version = 99")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sqlite.Open(context.Background(), path, sqlite.Config{}); !errors.Is(err, es.ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
}

// TestOpenRefusesAnInvalidConfigBeforeCreatingTheFile: a configuration
// that cannot work is refused before anything is written, so a mistake
// leaves no empty database (or WAL) behind.
func TestOpenRefusesAnInvalidConfigBeforeCreatingTheFile(t *testing.T) {
	ok := tallyProjection("tally")
	with := func(f func(*sqlite.Projection)) sqlite.Projection { p := ok; f(&p); return p }
	for name, cfg := range map[string]sqlite.Config{
		"inline projection without a name": {Inline: []sqlite.Projection{with(func(p *sqlite.Projection) { p.Name = "" })}},
		"inline projection without Apply":  {Inline: []sqlite.Projection{with(func(p *sqlite.Projection) { p.Apply = nil })}},
		"inline projection on es_events":   {Inline: []sqlite.Projection{with(func(p *sqlite.Projection) { p.Tables = []string{"es_events"} })}},
		"inline projection given twice":    {Inline: []sqlite.Projection{ok, ok}},
		"valid, then invalid projection":   {Inline: []sqlite.Projection{ok, with(func(p *sqlite.Projection) { p.Tables = nil })}},
		"negative BusyTimeout":             {BusyTimeout: -time.Second},
		"unknown Synchronous":              {Synchronous: 7},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "events.db")
		if s, err := sqlite.Open(context.Background(), path, cfg); !errors.Is(err, es.ErrInvalidConfig) {
			if err == nil {
				s.Close()
			}
			t.Errorf("%s: Open = %v, want ErrInvalidConfig", name, err)
		}
		if files, err := os.ReadDir(dir); err != nil || len(files) > 0 {
			t.Errorf("%s: a refused Open left %v behind (%v)", name, files, err)
		}
		if _, err := sqlite.OpenMemory(context.Background(), cfg); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("%s: OpenMemory = %v, want ErrInvalidConfig", name, err)
		}
	}
}

type clockAt time.Time

func (c clockAt) Now() time.Time { return time.Time(c) }

func TestAClockBeyondYear9999FailsTheAppendAndWritesNothing(t *testing.T) {
	s, _ := openFile(t, sqlite.Config{Clock: clockAt(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))})
	ctx := context.Background()
	_, err := es.Append(ctx, s, "s-1", es.AnyVersion, es.EventData{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(`{}`)})
	if !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("Append = %v, want ErrInvalidConfig", err)
	}
	if evs, err := es.Collect(s.ReadAll(ctx, es.AllQuery{})); err != nil || len(evs) != 0 {
		t.Fatalf("read back %d events, %v", len(evs), err)
	}
}

func TestUnreadableEvent(t *testing.T) {
	estest.TestUnreadableEvent(t, func(t *testing.T) (es.Store, func(string, int64)) {
		s, _ := openFile(t, sqlite.Config{})
		return s, func(stream string, version int64) {
			t.Helper()
			if err := s.WriteTx(context.Background(), func(tx *sql.Tx) error {
				if _, err := tx.Exec(`UPDATE es_streams SET version = ? WHERE stream_id = ?`, version, stream); err != nil {
					return err
				}
				_, err := tx.Exec(`INSERT INTO es_events (event_id, stream_id, version, category, type, schema_version, data, metadata, recorded_at)
					VALUES (?, ?, ?, 'meter', 'Read', 1, '{}', '{"extra":5}', '2026-01-01T00:00:00.000000000Z')`, es.NewID(), stream, version)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestSnapshots(t *testing.T) {
	estest.TestSnapshots(t, func(t *testing.T) es.Store {
		s, _ := openFile(t, sqlite.Config{})
		return s
	})
}
