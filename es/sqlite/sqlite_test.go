package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

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
