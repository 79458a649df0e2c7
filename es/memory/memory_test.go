package memory_test

import (
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
)

func TestConformance(t *testing.T) {
	estest.TestStore(t, func(*testing.T) es.Store { return memory.New() })
}
