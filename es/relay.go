package es

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Publisher delivers messages: to a broker, another service, or handlers
// in the same process ([Bus]). Publish returns nil only once the message
// is delivered; an error means "try again later".
type Publisher interface {
	Publish(ctx context.Context, m Message) error
}

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc func(ctx context.Context, m Message) error

// Publish calls f.
func (f PublisherFunc) Publish(ctx context.Context, m Message) error { return f(ctx, m) }

// Relay delivers an [Outbox]'s messages to a [Publisher]: at least once
// (a crash between delivering and recording it means a second delivery,
// with the same message ID), in order per key, retrying failed deliveries
// with backoff and parking a message that keeps failing.
//
// Messages are spread over [OutboxBuckets] buckets by key; each of the
// relay's workers owns the buckets b with b % workers == its number, so
// one worker delivers all messages of a key, in order. With [RelayLocker],
// each worker first takes a lease, so that any number of processes can
// run the relay and each bucket still has one active worker.
type Relay struct {
	outbox Outbox
	pub    Publisher
	cfg    relayConfig
}

type relayConfig struct {
	workers      int
	batch        int
	pollInterval time.Duration
	maxAttempts  int
	minBackoff   time.Duration
	maxBackoff   time.Duration
	clock        Clock
	locker       Locker
	metrics      *OutboxMetrics
	logger       *slog.Logger
}

// RelayOption configures a [Relay].
type RelayOption func(*relayConfig)

// RelayWorkers sets the number of workers (default 1, at most OutboxBuckets).
func RelayWorkers(n int) RelayOption {
	return func(c *relayConfig) { c.workers = min(max(n, 1), OutboxBuckets) }
}

// RelayPollInterval sets how often an idle worker looks for due messages
// (default 100ms). It bounds how late a deadline fires.
func RelayPollInterval(d time.Duration) RelayOption {
	return func(c *relayConfig) { c.pollInterval = d }
}

// RelayRetry sets how many failed deliveries park a message (default 10)
// and the bounds of the backoff between them (default 100ms to 1m).
func RelayRetry(maxAttempts int, minBackoff, maxBackoff time.Duration) RelayOption {
	return func(c *relayConfig) {
		c.maxAttempts, c.minBackoff, c.maxBackoff = max(maxAttempts, 1), minBackoff, max(maxBackoff, minBackoff)
	}
}

// RelayClock sets the clock that decides which messages are due (default
// [SystemClock]).
func RelayClock(c Clock) RelayOption { return func(cfg *relayConfig) { cfg.clock = c } }

// RelayLocker makes every worker hold a lease from l while it delivers.
func RelayLocker(l Locker) RelayOption { return func(c *relayConfig) { c.locker = l } }

// WithOutboxMetrics reports deliveries and the backlog to m.
func WithOutboxMetrics(m *OutboxMetrics) RelayOption { return func(c *relayConfig) { c.metrics = m } }

// RelayLogger sets the logger (default slog.Default()).
func RelayLogger(l *slog.Logger) RelayOption { return func(c *relayConfig) { c.logger = l } }

// NewRelay returns a relay from outbox to pub. Run starts it.
func NewRelay(outbox Outbox, pub Publisher, opts ...RelayOption) *Relay {
	cfg := relayConfig{
		workers: 1, batch: 100, pollInterval: 100 * time.Millisecond,
		maxAttempts: 10, minBackoff: 100 * time.Millisecond, maxBackoff: time.Minute,
		clock: SystemClock{}, logger: slog.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return &Relay{outbox: outbox, pub: pub, cfg: cfg}
}

// Run delivers messages until ctx ends, then returns nil.
func (r *Relay) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for w := range r.cfg.workers {
		var buckets []int
		for b := w; b < OutboxBuckets; b += r.cfg.workers {
			buckets = append(buckets, b)
		}
		wg.Go(func() { r.worker(ctx, w, buckets) })
	}
	wg.Wait()
	return nil
}

func (r *Relay) worker(ctx context.Context, w int, buckets []int) {
	for ctx.Err() == nil {
		held, release := ctx, func() {}
		if r.cfg.locker != nil {
			var err error
			held, release, err = r.cfg.locker.Lock(ctx, fmt.Sprintf("es-relay:%d/%d", w, r.cfg.workers))
			if err != nil {
				if ctx.Err() == nil {
					r.cfg.logger.WarnContext(ctx, "relay: take lease", "worker", w, "err", err)
					sleep(ctx, r.cfg.pollInterval)
				}
				continue
			}
		}
		r.deliverUntilDone(held, buckets)
		release()
	}
}

// deliverUntilDone delivers due messages until ctx ends.
func (r *Relay) deliverUntilDone(ctx context.Context, buckets []int) {
	for ctx.Err() == nil {
		n, err := r.deliverDue(ctx, buckets)
		if err != nil && ctx.Err() == nil {
			r.cfg.logger.WarnContext(ctx, "relay: outbox unavailable", "err", err)
		}
		if n < r.cfg.batch || err != nil {
			sleep(ctx, r.cfg.pollInterval)
		}
	}
}

// deliverDue delivers one batch of due messages. It returns how many it
// fetched.
func (r *Relay) deliverDue(ctx context.Context, buckets []int) (int, error) {
	now := r.cfg.clock.Now()
	msgs, err := r.outbox.Due(ctx, now, buckets, r.cfg.batch)
	if err != nil {
		return 0, err
	}
	r.cfg.metrics.observeBacklog(ctx, r.outbox)
	held := make(map[string]bool) // keys with a failed message in this batch
	for _, m := range msgs {
		if held[m.Key] {
			continue
		}
		start := time.Now()
		perr := r.pub.Publish(ctx, m.Message)
		if ctx.Err() != nil {
			return len(msgs), nil
		}
		r.cfg.metrics.observeDelivery(start, perr)
		if perr == nil {
			if err := r.outbox.MarkDelivered(ctx, m.Seq); err != nil {
				return len(msgs), err
			}
			continue
		}
		held[m.Key] = true
		attempts := m.Attempts + 1
		park := attempts >= r.cfg.maxAttempts
		backoff := r.cfg.minBackoff << min(attempts-1, 30)
		if backoff <= 0 || backoff > r.cfg.maxBackoff {
			backoff = r.cfg.maxBackoff
		}
		retryAt := now.Add(backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1)))
		level := slog.LevelWarn
		if park {
			level = slog.LevelError
		}
		r.cfg.logger.Log(ctx, level, "relay: delivery failed", "message", m.ID, "type", m.Type, "key", m.Key,
			"attempts", attempts, "parked", park, "err", perr)
		if err := r.outbox.MarkFailed(ctx, m.Seq, retryAt, park, perr.Error()); err != nil {
			return len(msgs), err
		}
	}
	return len(msgs), nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Bus is an in-process [Publisher]: it hands each message to the handlers
// subscribed to its type, in the order they subscribed. It suits a single
// binary whose modules talk through the outbox. If a handler fails,
// Publish fails and the relay delivers the message again to every handler,
// so handlers must deduplicate (an [Inbox]).
type Bus struct {
	mu       sync.RWMutex
	handlers map[string][]func(context.Context, Message) error
}

// NewBus returns a bus without subscribers.
func NewBus() *Bus { return &Bus{handlers: make(map[string][]func(context.Context, Message) error)} }

// Subscribe adds a handler for messages of type msgType.
func (b *Bus) Subscribe(msgType string, h func(ctx context.Context, m Message) error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handlers[msgType] = append(b.handlers[msgType], h)
}

// Publish implements [Publisher]. A message nobody subscribed to is
// delivered to nobody, successfully.
func (b *Bus) Publish(ctx context.Context, m Message) error {
	b.mu.RLock()
	hs := b.handlers[m.Type]
	b.mu.RUnlock()
	var errs []error
	for _, h := range hs {
		if err := h(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
