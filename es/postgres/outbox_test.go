package postgres_test

import (
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres/pgtest"
)

func TestOutboxConformance(t *testing.T) {
	estest.TestOutbox(t, func(t *testing.T) es.Outbox { return pgtest.NewStore(t) })
}
