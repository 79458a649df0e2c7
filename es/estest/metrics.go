package estest

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"esgo.dev/es"
)

// TestStoreMetrics checks that a store reports its appends to
// [es.StoreMetrics]: a successful append, a conflict and an invalid append
// each count once under their result, written events are counted, and
// every call is timed. newStore must return an empty store that reports to
// m.
func TestStoreMetrics(t *testing.T, newStore func(t *testing.T, m *es.StoreMetrics) es.Store) {
	reg := prometheus.NewRegistry()
	m, err := es.NewStoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t, m)
	ctx := context.Background()
	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, events("Read", 3)...); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, event("Read", 4)); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want a conflict", err)
	}
	if _, err := es.Append(ctx, s, "", es.AnyVersion, event("Read", 5)); !errors.Is(err, es.ErrInvalidAppend) {
		t.Fatalf("got %v, want an invalid append", err)
	}
	for name, c := range map[string]struct {
		got  prometheus.Collector
		want float64
	}{
		`ok appends`:       {m.Appends("ok"), 1},
		`conflict appends`: {m.Appends("conflict"), 1},
		`error appends`:    {m.Appends("error"), 1},
		`appended events`:  {m.AppendedEvents(), 3},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s = %v, want %v", name, got, c.want)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	timed := uint64(0)
	for _, f := range families {
		if f.GetName() == "es_store_append_duration_seconds" {
			timed = f.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if timed != 3 {
		t.Errorf("timed appends = %d, want 3", timed)
	}
}
