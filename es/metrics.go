package es

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreMetrics are the Prometheus collectors every store reports to, under
// the same names whichever store it is:
//
//   - es_store_appends_total{result="ok"|"conflict"|"error"}: Append calls;
//   - es_store_appended_events_total: events written;
//   - es_store_append_duration_seconds: Append latency, successful or not.
//
// A nil *StoreMetrics records nothing, so stores can call it unconditionally.
type StoreMetrics struct {
	appends  *prometheus.CounterVec
	events   prometheus.Counter
	duration prometheus.Histogram
}

// NewStoreMetrics creates the store collectors and registers them with reg.
// Each store needs its own; to tell several stores apart in one registry,
// wrap reg with prometheus.WrapRegistererWith and a label.
func NewStoreMetrics(reg prometheus.Registerer) (*StoreMetrics, error) {
	m := &StoreMetrics{
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "es_store_appends_total",
			Help: "Append calls, by result: ok, conflict (wrong expected version) or error.",
		}, []string{"result"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "es_store_appended_events_total",
			Help: "Events written by successful appends.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "es_store_append_duration_seconds",
			Help:    "Time taken by Append calls.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
	}
	for _, c := range []prometheus.Collector{m.appends, m.events, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	// Make all three results visible from the start.
	for _, r := range []string{"ok", "conflict", "error"} {
		m.appends.WithLabelValues(r)
	}
	return m, nil
}

// ObserveAppend records one Append call that started at start, wrote
// events events (when err is nil) and returned err.
func (m *StoreMetrics) ObserveAppend(start time.Time, events int, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(time.Since(start).Seconds())
	switch {
	case err == nil:
		m.appends.WithLabelValues("ok").Inc()
		m.events.Add(float64(events))
	case errors.Is(err, ErrConcurrency):
		m.appends.WithLabelValues("conflict").Inc()
	default:
		m.appends.WithLabelValues("error").Inc()
	}
}
