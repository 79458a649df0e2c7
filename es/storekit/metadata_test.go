package storekit_test

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"

	"esgo.dev/es"
	"esgo.dev/es/storekit"
)

// DecodeMetadata agrees with json.Unmarshal, on the shapes it decodes
// itself and on those it hands over.
func FuzzDecodeMetadata(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { } `, `{"correlation_id":"c-1"}`,
		`{"correlation_id":"0190a1b2","causation_id":"x","traceparent":"00-ab-cd-01","extra":{"user":"u-1","k":"v"}}`,
		`{"extra": {"user": "u-1"}, "causation_id": "b", "correlation_id": "a"}`,
		`{"extra":{}}`, `{"correlation_id":"a\"b"}`, `{"correlation_id":"zażółć"}`, `{"other":1}`,
		`{"correlation_id":null}`, `{"extra":null}`, `{"correlation_id":"a","correlation_id":"b"}`,
		`{"Correlation_ID":"a"}`, `{"correlation_id":"a",}`, `{"correlation_id":"a"} x`, `[]`, ``, `{"extra":{"a":"1"},"extra":{"b":"2"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want es.Metadata
		wantErr := json.Unmarshal(data, &want)
		var got es.Metadata
		gotErr := storekit.DecodeMetadata(data, &got)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("DecodeMetadata(%q) error = %v, json.Unmarshal's = %v", data, gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("DecodeMetadata(%q) differs from json.Unmarshal (-want +got):\n%s", data, diff)
		}
	})
}

func BenchmarkDecodeMetadata(b *testing.B) {
	data := []byte(`{"extra": {"user": "u-1"}, "correlation_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"}`)
	b.Run("storekit", func(b *testing.B) {
		for b.Loop() {
			var m es.Metadata
			if err := storekit.DecodeMetadata(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var m es.Metadata
			if err := json.Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}
