package sqlite_test

import (
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
)

func TestObserver(t *testing.T) {
	estest.TestStoreObserver(t, func(t *testing.T, o es.StoreObserver) es.Store {
		s, _ := openFile(t, sqlite.Config{Observer: o})
		return s
	})
}
