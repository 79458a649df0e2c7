package es

import "time"

// Observers are how es reports what it does, for metrics and tracing,
// without depending on a metrics library: a store, a [Subscription] and a
// [Relay] each take an observer in their configuration and call it as they
// work. esgo.dev/es/esprom implements all three with Prometheus
// collectors. Observers are called on hot paths and from many goroutines:
// they must be quick and safe for concurrent use.

// StoreObserver learns of every append a store runs.
type StoreObserver interface {
	// ObserveAppend is called once per Append (or AppendEnqueue) call when
	// it returns: events is the number of events written (0 for a repeat
	// or a failure), took the time the call took, err what it returned.
	ObserveAppend(events int, took time.Duration, err error)
}

// SubscriptionObserver learns of a subscription's progress.
type SubscriptionObserver interface {
	// ObserveBatch is called after each call of the consumer's Handle.
	ObserveBatch(subscription string, events int, took time.Duration, err error)
	// ObservePosition is called after each batch read: position is the
	// checkpoint, lag the positions between the store's head and it (0
	// once caught up, -1 when the store cannot tell its head).
	ObservePosition(subscription string, position, lag int64)
	// ObserveReadError is called when reading the store fails.
	ObserveReadError(subscription string, err error)
}

// RelayObserver learns of a relay's deliveries.
type RelayObserver interface {
	// ObserveDelivery is called after each delivery attempt.
	ObserveDelivery(m Message, took time.Duration, err error)
	// ObserveBacklog is called with the outbox's backlog (messages neither
	// delivered nor cancelled) each time a worker fetches due messages.
	ObserveBacklog(n int64)
}
