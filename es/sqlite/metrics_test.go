package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := es.NewStoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openFile(t, sqlite.WithMetrics(m))

	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, event(1), event(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, event(3)); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want a conflict", err)
	}
	if _, err := es.Append(ctx, s, "", es.AnyVersion, event(4)); !errors.Is(err, es.ErrInvalidAppend) {
		t.Fatalf("got %v, want an invalid append", err)
	}

	want := map[string]float64{
		`es_store_appends_total{result="ok"}`:       1,
		`es_store_appends_total{result="conflict"}`: 1,
		`es_store_appends_total{result="error"}`:    1,
		`es_store_appended_events_total`:            2,
		`es_store_append_duration_seconds_count`:    3,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// gather reads counters and histogram counts from reg, keyed as in the
// exposition format.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if len(m.GetLabel()) > 0 {
				key += "{"
				for i, l := range m.GetLabel() {
					if i > 0 {
						key += ","
					}
					key += l.GetName() + `="` + l.GetValue() + `"`
				}
				key += "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}
