// Package esprom reports what es does as Prometheus metrics: it implements
// es's observer interfaces ([es.StoreObserver], [es.SubscriptionObserver],
// [es.RelayObserver]) with collectors, so that package es itself depends on
// no metrics library. Create the metrics once, register them, and hand
// them to the store, subscriptions and relay:
//
//	store, _ := sqlite.Open(ctx, path, sqlite.Config{Observer: storeMetrics})
//	sub := es.NewSubscription(name, store, consumer, es.SubscriptionConfig{Observer: subMetrics})
//
// All types are safe for concurrent use. A nil pointer of each type records
// nothing.
package esprom

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"esgo.dev/es"
)

// buckets returns the latency buckets of every histogram here: 100µs up
// to about 2.4s in steps of 2.5×, from an in-memory append to a slow fsync.
func buckets() []float64 { return prometheus.ExponentialBuckets(0.0001, 2.5, 12) }

// StoreMetrics are the collectors of a store's appends, under the same
// names whichever store it is:
//
//   - es_store_appends_total{result="ok"|"conflict"|"error"}: Append calls;
//   - es_store_appended_events_total: events written;
//   - es_store_append_duration_seconds: Append latency, successful or not.
//
// Each store needs its own; to tell several stores apart in one registry,
// wrap the registerer with prometheus.WrapRegistererWith and a label.
type StoreMetrics struct {
	appends  *prometheus.CounterVec
	events   prometheus.Counter
	duration prometheus.Histogram
}

var _ es.StoreObserver = (*StoreMetrics)(nil)

// NewStoreMetrics creates the store collectors and registers them with reg.
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
			Buckets: buckets(),
		}),
	}
	if err := register(reg, m.appends, m.events, m.duration); err != nil {
		return nil, err
	}
	// Make all three results visible from the start.
	for _, r := range []string{"ok", "conflict", "error"} {
		m.appends.WithLabelValues(r)
	}
	return m, nil
}

// ObserveAppend implements [es.StoreObserver].
func (m *StoreMetrics) ObserveAppend(events int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	switch {
	case err == nil:
		m.appends.WithLabelValues("ok").Inc()
		m.events.Add(float64(events))
	case errors.Is(err, es.ErrConcurrency):
		m.appends.WithLabelValues("conflict").Inc()
	default:
		m.appends.WithLabelValues("error").Inc()
	}
}

// Appends returns the append counter for result "ok", "conflict" or "error".
func (m *StoreMetrics) Appends(result string) prometheus.Counter {
	return m.appends.WithLabelValues(result)
}

// AppendedEvents returns the counter of events written.
func (m *StoreMetrics) AppendedEvents() prometheus.Counter { return m.events }

// SubscriptionMetrics are the collectors of subscriptions, one series per
// subscription name:
//
//   - es_subscription_position: the checkpoint, the last position handled;
//   - es_subscription_lag: positions between the store's head and the
//     checkpoint while catching up (when the store implements
//     [es.HeadReader]), 0 once caught up;
//   - es_subscription_events_total: events handled;
//   - es_subscription_handler_errors_total: failed Handle calls;
//   - es_subscription_read_errors_total: failed reads of the store;
//   - es_subscription_handle_duration_seconds: time per Handle call.
//
// One SubscriptionMetrics serves all the subscriptions of a registry.
type SubscriptionMetrics struct {
	position   *prometheus.GaugeVec
	lag        *prometheus.GaugeVec
	events     *prometheus.CounterVec
	errors     *prometheus.CounterVec
	readErrors *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

var _ es.SubscriptionObserver = (*SubscriptionMetrics)(nil)

// NewSubscriptionMetrics creates the subscription collectors and registers
// them with reg.
func NewSubscriptionMetrics(reg prometheus.Registerer) (*SubscriptionMetrics, error) {
	l := []string{"subscription"}
	m := &SubscriptionMetrics{
		position:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "es_subscription_position", Help: "Global position of the last event the subscription handled."}, l),
		lag:        prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "es_subscription_lag", Help: "Positions between the store's last event and the subscription's checkpoint."}, l),
		events:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_subscription_events_total", Help: "Events handled by the subscription."}, l),
		errors:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_subscription_handler_errors_total", Help: "Failed attempts to handle events."}, l),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_subscription_read_errors_total", Help: "Failed reads of the store."}, l),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "es_subscription_handle_duration_seconds", Help: "Time taken to handle one batch of events.",
			Buckets: buckets(),
		}, l),
	}
	if err := register(reg, m.position, m.lag, m.events, m.errors, m.readErrors, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// ObserveBatch implements [es.SubscriptionObserver].
func (m *SubscriptionMetrics) ObserveBatch(name string, events int, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(name).Observe(took.Seconds())
	if err != nil {
		m.errors.WithLabelValues(name).Inc()
		return
	}
	m.events.WithLabelValues(name).Add(float64(events))
}

// ObservePosition implements [es.SubscriptionObserver]. An unknown lag
// (-1) leaves the lag gauge as it was.
func (m *SubscriptionMetrics) ObservePosition(name string, position, lag int64) {
	if m == nil {
		return
	}
	m.position.WithLabelValues(name).Set(float64(position))
	if lag >= 0 {
		m.lag.WithLabelValues(name).Set(float64(lag))
	}
}

// ObserveReadError implements [es.SubscriptionObserver].
func (m *SubscriptionMetrics) ObserveReadError(name string, _ error) {
	if m == nil {
		return
	}
	m.readErrors.WithLabelValues(name).Inc()
}

// Position returns the position gauge of the named subscription.
func (m *SubscriptionMetrics) Position(name string) prometheus.Gauge {
	return m.position.WithLabelValues(name)
}

// Lag returns the lag gauge of the named subscription.
func (m *SubscriptionMetrics) Lag(name string) prometheus.Gauge { return m.lag.WithLabelValues(name) }

// Events returns the handled-events counter of the named subscription.
func (m *SubscriptionMetrics) Events(name string) prometheus.Counter {
	return m.events.WithLabelValues(name)
}

// Errors returns the handler-errors counter of the named subscription.
func (m *SubscriptionMetrics) Errors(name string) prometheus.Counter {
	return m.errors.WithLabelValues(name)
}

// ReadErrors returns the read-errors counter of the named subscription.
func (m *SubscriptionMetrics) ReadErrors(name string) prometheus.Counter {
	return m.readErrors.WithLabelValues(name)
}

// RelayMetrics are the collectors of a [es.Relay] and its outbox:
//
//   - es_outbox_backlog: messages neither delivered nor cancelled;
//   - es_outbox_deliveries_total{result="ok"|"error"}: delivery attempts;
//   - es_outbox_delivery_duration_seconds: time per delivery attempt.
type RelayMetrics struct {
	backlog    prometheus.Gauge
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
}

var _ es.RelayObserver = (*RelayMetrics)(nil)

// NewRelayMetrics creates the relay collectors and registers them with reg.
func NewRelayMetrics(reg prometheus.Registerer) (*RelayMetrics, error) {
	m := &RelayMetrics{
		backlog:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "es_outbox_backlog", Help: "Outbox messages neither delivered nor cancelled."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_outbox_deliveries_total", Help: "Delivery attempts of outbox messages, by result."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "es_outbox_delivery_duration_seconds", Help: "Time taken by one delivery attempt.",
			Buckets: buckets(),
		}),
	}
	if err := register(reg, m.backlog, m.deliveries, m.duration); err != nil {
		return nil, err
	}
	m.deliveries.WithLabelValues("ok")
	m.deliveries.WithLabelValues("error")
	return m, nil
}

// ObserveDelivery implements [es.RelayObserver].
func (m *RelayMetrics) ObserveDelivery(_ es.Message, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	if err != nil {
		m.deliveries.WithLabelValues("error").Inc()
		return
	}
	m.deliveries.WithLabelValues("ok").Inc()
}

// ObserveBacklog implements [es.RelayObserver].
func (m *RelayMetrics) ObserveBacklog(n int64) {
	if m == nil {
		return
	}
	m.backlog.Set(float64(n))
}

// Deliveries returns the delivery counter for result "ok" or "error".
func (m *RelayMetrics) Deliveries(result string) prometheus.Counter {
	return m.deliveries.WithLabelValues(result)
}

// Backlog returns the backlog gauge.
func (m *RelayMetrics) Backlog() prometheus.Gauge { return m.backlog }

func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
