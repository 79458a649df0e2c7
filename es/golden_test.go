package es_test

import (
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
)

// TestEventSchemas keeps the stored shape of the test domain's events in
// testdata/events. PriceSet.v1.json, PriceSet.v2.json and
// PriceChanged.v1.json are hand-written records of older shapes: they must
// keep decoding through the upcasters.
func TestEventSchemas(t *testing.T) {
	reg := priceRegistry(t)
	es.MustRegister[ItemAdded](reg, "ItemAdded")
	es.MustRegister[CartConfirmed](reg, "CartConfirmed")
	estest.GoldenSchema(t, reg, "testdata/events")
}
