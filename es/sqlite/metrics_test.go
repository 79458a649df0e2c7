package sqlite_test

import (
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
)

func TestMetrics(t *testing.T) {
	estest.TestStoreMetrics(t, func(t *testing.T, m *es.StoreMetrics) es.Store {
		s, _ := openFile(t, sqlite.WithMetrics(m))
		return s
	})
}
