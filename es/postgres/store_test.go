package postgres_test

import (
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres/pgtest"
)

func TestConformance(t *testing.T) {
	estest.TestStore(t, func(t *testing.T) es.Store { return pgtest.NewStore(t) })
}
