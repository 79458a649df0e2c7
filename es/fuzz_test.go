package es_test

import (
	"encoding/json"
	"errors"
	"testing"

	"esgo.dev/es"
)

// FuzzRegistryDecode feeds arbitrary stored type names, schema versions
// and JSON to a registry with an upcaster chain and a renamed type: decoding
// must never panic, and must either give a value of the registered type or
// fail with one of the registry's sentinels.
func FuzzRegistryDecode(f *testing.F) {
	f.Add("PriceSet", 1, []byte(`{"price":"12.50"}`))
	f.Add("PriceChanged", 2, []byte(`{"amount":5}`))
	f.Add("PriceSet", 3, []byte(`{"price":{"amount":1,"currency":"PLN"}}`))
	f.Add("PriceSet", 4, []byte(`{}`))
	f.Add("Nope", 1, []byte(`null`))
	f.Add("PriceSet", 0, []byte(`[`))
	f.Add("es.MessageHandled", 1, []byte(`{"message_id":"x"}`))
	f.Add("es.DeadlinesCancelled", 1, []byte(`{"deadline_ids":["x"]}`))
	f.Fuzz(func(t *testing.T, name string, version int, data []byte) {
		reg := priceRegistry(t)
		v, err := reg.Decode(es.Event{Type: name, SchemaVersion: version, Data: json.RawMessage(data)})
		if err != nil {
			if !errors.Is(err, es.ErrUnknownEventType) && !errors.Is(err, es.ErrMissingUpcaster) &&
				!errors.Is(err, es.ErrUpcast) && !errors.Is(err, es.ErrDecode) {
				t.Fatalf("Decode(%q v%d) = %v, which wraps none of the registry's sentinels", name, version, err)
			}
			return
		}
		switch v.(type) {
		case PriceSet, es.MessageHandled, es.DeadlinesCancelled: // the last two are built in
		default:
			t.Fatalf("Decode(%q v%d) gave a %T", name, version, v)
		}
		// DecodeKnown agrees.
		k, ok, kerr := reg.DecodeKnown(es.Event{Type: name, SchemaVersion: version, Data: json.RawMessage(data)})
		if kerr != nil || !ok || k == nil {
			t.Fatalf("DecodeKnown disagrees with Decode: %v %v %v", k, ok, kerr)
		}
	})
}

// FuzzMetadataJSON decodes arbitrary JSON as metadata, as the stores do
// when they read an event back: it must never panic, and what decodes must
// encode and decode to the same value.
func FuzzMetadataJSON(f *testing.F) {
	f.Add([]byte(`{"correlation_id":"c","causation_id":"d","traceparent":"t","extra":{"k":"v"}}`))
	f.Add([]byte(`{"extra":5}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var md es.Metadata
		if json.Unmarshal(data, &md) != nil {
			return
		}
		again, err := json.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		var back es.Metadata
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("metadata %s does not decode again: %v", again, err)
		}
		if back.CorrelationID != md.CorrelationID || back.CausationID != md.CausationID || back.TraceParent != md.TraceParent || len(back.Extra) != len(md.Extra) {
			t.Fatalf("metadata changed on a round trip: %+v vs %+v", md, back)
		}
	})
}
