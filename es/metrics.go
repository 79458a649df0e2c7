package es

import (
	"context"
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

// SubscriptionMetrics are the Prometheus collectors of subscriptions, one
// series per subscription name:
//
//   - es_subscription_position: the checkpoint, the last position handled;
//   - es_subscription_lag: positions between the store's head and the
//     checkpoint while catching up (when the store implements
//     [HeadReader]), 0 once caught up;
//   - es_subscription_events_total: events handled;
//   - es_subscription_handler_errors_total: failed Handle calls;
//   - es_subscription_handle_duration_seconds: time per Handle call.
//
// One SubscriptionMetrics serves all the subscriptions of a registry. A nil
// *SubscriptionMetrics records nothing.
type SubscriptionMetrics struct {
	position *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	events   *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewSubscriptionMetrics creates the subscription collectors and registers
// them with reg.
func NewSubscriptionMetrics(reg prometheus.Registerer) (*SubscriptionMetrics, error) {
	l := []string{"subscription"}
	m := &SubscriptionMetrics{
		position: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "es_subscription_position", Help: "Global position of the last event the subscription handled."}, l),
		lag:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "es_subscription_lag", Help: "Positions between the store's last event and the subscription's checkpoint."}, l),
		events:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_subscription_events_total", Help: "Events handled by the subscription."}, l),
		errors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_subscription_handler_errors_total", Help: "Failed attempts to handle events."}, l),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "es_subscription_handle_duration_seconds", Help: "Time taken to handle one batch of events.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}, l),
	}
	for _, c := range []prometheus.Collector{m.position, m.lag, m.events, m.errors, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *SubscriptionMetrics) observePosition(ctx context.Context, s *Subscription, position int64, caughtUp bool) {
	if m == nil {
		return
	}
	m.position.WithLabelValues(s.name).Set(float64(position))
	if caughtUp {
		m.lag.WithLabelValues(s.name).Set(0)
		return
	}
	if h, ok := s.store.(HeadReader); ok {
		if head, err := h.Head(ctx); err == nil {
			m.lag.WithLabelValues(s.name).Set(float64(max(head-position, 0)))
		}
	}
}

func (m *SubscriptionMetrics) observeHandled(name string, start time.Time, events int, err error) {
	if m == nil {
		return
	}
	m.duration.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(name).Inc()
		return
	}
	m.events.WithLabelValues(name).Add(float64(events))
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

// OutboxMetrics are the Prometheus collectors of a [Relay]:
//
//   - es_outbox_backlog: messages neither delivered nor cancelled;
//   - es_outbox_deliveries_total{result="ok"|"error"}: delivery attempts;
//   - es_outbox_delivery_duration_seconds: time per delivery attempt.
//
// A nil *OutboxMetrics records nothing.
type OutboxMetrics struct {
	backlog    prometheus.Gauge
	deliveries *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewOutboxMetrics creates the outbox collectors and registers them with reg.
func NewOutboxMetrics(reg prometheus.Registerer) (*OutboxMetrics, error) {
	m := &OutboxMetrics{
		backlog:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "es_outbox_backlog", Help: "Outbox messages neither delivered nor cancelled."}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "es_outbox_deliveries_total", Help: "Delivery attempts of outbox messages, by result."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "es_outbox_delivery_duration_seconds", Help: "Time taken by one delivery attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 12),
		}),
	}
	for _, c := range []prometheus.Collector{m.backlog, m.deliveries, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.deliveries.WithLabelValues("ok")
	m.deliveries.WithLabelValues("error")
	return m, nil
}

func (m *OutboxMetrics) observeBacklog(ctx context.Context, o Outbox) {
	if m == nil {
		return
	}
	if n, err := o.Backlog(ctx); err == nil {
		m.backlog.Set(float64(n))
	}
}

func (m *OutboxMetrics) observeDelivery(start time.Time, err error) {
	if m == nil {
		return
	}
	m.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		m.deliveries.WithLabelValues("error").Inc()
		return
	}
	m.deliveries.WithLabelValues("ok").Inc()
}

// Deliveries returns the delivery counter for result "ok" or "error".
func (m *OutboxMetrics) Deliveries(result string) prometheus.Counter {
	return m.deliveries.WithLabelValues(result)
}

// Appends returns the append counter for result "ok", "conflict" or "error".
func (m *StoreMetrics) Appends(result string) prometheus.Counter {
	return m.appends.WithLabelValues(result)
}

// AppendedEvents returns the counter of events written.
func (m *StoreMetrics) AppendedEvents() prometheus.Counter { return m.events }
