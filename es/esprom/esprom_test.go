package esprom_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"esgo.dev/es"
	"esgo.dev/es/esprom"
	"esgo.dev/es/memory"
)

func TestStoreMetricsCountAppendsByResult(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := esprom.NewStoreMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveAppend(3, time.Millisecond, nil)
	m.ObserveAppend(0, time.Millisecond, &es.VersionConflictError{StreamID: "s-1"})
	m.ObserveAppend(0, time.Millisecond, errors.New("disk full"))
	for name, c := range map[string]struct {
		got  prometheus.Collector
		want float64
	}{
		"ok": {m.Appends("ok"), 1}, "conflict": {m.Appends("conflict"), 1}, "error": {m.Appends("error"), 1},
		"events": {m.AppendedEvents(), 3},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s = %v, want %v", name, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "es_store_append_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("duration series = %d, %v", n, err)
	}
	if _, err := esprom.NewStoreMetrics(reg); err == nil {
		t.Fatal("registering the collectors twice succeeded")
	}
}

func TestSubscriptionMetricsKeepTheLagWhenItIsUnknown(t *testing.T) {
	m, _ := esprom.NewSubscriptionMetrics(prometheus.NewRegistry())
	m.ObservePosition("s", 10, 5)
	m.ObservePosition("s", 12, -1)
	if p, l := testutil.ToFloat64(m.Position("s")), testutil.ToFloat64(m.Lag("s")); p != 12 || l != 5 {
		t.Fatalf("position %v lag %v, want 12 and 5", p, l)
	}
	m.ObserveReadError("s", errors.New("bad row"))
	m.ObserveBatch("s", 4, time.Millisecond, nil)
	m.ObserveBatch("s", 4, time.Millisecond, errors.New("handler"))
	if r, e, ev := testutil.ToFloat64(m.ReadErrors("s")), testutil.ToFloat64(m.Errors("s")), testutil.ToFloat64(m.Events("s")); r != 1 || e != 1 || ev != 4 {
		t.Fatalf("read errors %v, handler errors %v, events %v", r, e, ev)
	}
}

func TestRelayMetrics(t *testing.T) {
	m, _ := esprom.NewRelayMetrics(prometheus.NewRegistry())
	m.ObserveDelivery(es.Message{}, time.Millisecond, nil)
	m.ObserveDelivery(es.Message{}, time.Millisecond, errors.New("broker down"))
	m.ObserveBacklog(7)
	if ok, bad, b := testutil.ToFloat64(m.Deliveries("ok")), testutil.ToFloat64(m.Deliveries("error")), testutil.ToFloat64(m.Backlog()); ok != 1 || bad != 1 || b != 7 {
		t.Fatalf("ok %v error %v backlog %v", ok, bad, b)
	}
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var s *esprom.StoreMetrics
	var sub *esprom.SubscriptionMetrics
	var r *esprom.RelayMetrics
	s.ObserveAppend(1, 0, nil)
	sub.ObserveBatch("x", 1, 0, nil)
	sub.ObservePosition("x", 1, 0)
	sub.ObserveReadError("x", nil)
	r.ObserveDelivery(es.Message{}, 0, nil)
	r.ObserveBacklog(1)
}

// Metrics are created once, registered, and handed to the store as its
// observer.
func Example() {
	reg := prometheus.NewRegistry()
	metrics, err := esprom.NewStoreMetrics(reg)
	if err != nil {
		panic(err)
	}
	store := memory.New(memory.Config{Observer: metrics})
	_, err = es.Append(context.Background(), store, "cart-1", es.NoStream,
		es.EventData{ID: es.NewID(), Type: "CartOpened", SchemaVersion: 1, Data: []byte(`{}`)})
	fmt.Println(err, testutil.ToFloat64(metrics.Appends("ok")), testutil.ToFloat64(metrics.AppendedEvents()))
	// Output: <nil> 1 1
}
