package es

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
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
// relay's workers owns the buckets b with b % Workers == its number, so
// one worker delivers all messages of a key, in order.
//
// With a Locker, the relay takes one lease, named [RelayLease], before any
// worker starts, and its workers stop when the lease is lost: any number
// of processes can run the relay, one of them delivers and the others
// stand by to take over. One lease for the whole relay, rather than one
// per worker, is what keeps each bucket to one active worker whatever the
// processes' Workers settings: leases named after a worker's number and
// count would let a relay with 2 workers and one with 4 both serve bucket
// 0 during a rolling deploy that changes the setting. Deliveries scale
// with Workers inside the active process.
//
// A Relay is safe for concurrent use, but Run it once at a time.
type Relay struct {
	outbox Outbox
	pub    Publisher
	cfg    RelayConfig
}

// RelayConfig configures a [Relay]. The zero value is a working
// configuration: each field says its default.
type RelayConfig struct {
	// Workers is the number of workers delivering in parallel, each for
	// its own keys (default 1, at most OutboxBuckets).
	Workers int
	// BatchSize is how many due messages a worker fetches at once
	// (default 100).
	BatchSize int
	// PollInterval is how often an idle worker looks for due messages
	// (default 100ms). It bounds how late a deadline fires.
	PollInterval time.Duration
	// MaxAttempts is how many failed deliveries park a message (default
	// 10).
	MaxAttempts int
	// MaxOutageRetries is how many times in a row a worker retries the
	// outbox itself (or the Locker) before Run stops and returns the last
	// error (default 30: with the backoff capped at MaxBackoff, half an
	// hour of outage). A relay that stops is visible; one that retries
	// forever hides a broken database behind log lines.
	MaxOutageRetries int
	// MinBackoff and MaxBackoff bound the wait before a failed delivery is
	// retried, doubling from one try to the next, with jitter (defaults
	// 100ms and 1m; a default gives way to the other field when only that
	// one is set). MinBackoff above MaxBackoff is an invalid configuration.
	MinBackoff, MaxBackoff time.Duration
	// Clock decides which messages are due (default [SystemClock]).
	Clock Clock
	// Locker, when set, makes the relay hold the lease [RelayLease] while
	// it delivers, so that relays in several processes can stand by for
	// each other.
	Locker Locker
	// Observer, when set, is told of deliveries and the backlog
	// (esgo.dev/es/esprom has one for Prometheus).
	Observer RelayObserver
	// Logger receives failed deliveries (default slog.Default()).
	Logger *slog.Logger
}

func (c RelayConfig) withDefaults() (RelayConfig, error) {
	if c.Workers < 0 || c.BatchSize < 0 || c.PollInterval < 0 || c.MaxAttempts < 0 || c.MaxOutageRetries < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return c, fmt.Errorf("%w: relay: negative Workers, BatchSize, PollInterval, MaxAttempts, MaxOutageRetries or backoff", ErrInvalidConfig)
	}
	if c.Workers > OutboxBuckets {
		return c, fmt.Errorf("%w: relay: %d workers, but there are only %d buckets", ErrInvalidConfig, c.Workers, OutboxBuckets)
	}
	c.Workers = cmp.Or(c.Workers, 1)
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.PollInterval = cmp.Or(c.PollInterval, 100*time.Millisecond)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 10)
	c.MaxOutageRetries = cmp.Or(c.MaxOutageRetries, 30)
	var err error
	if c.MinBackoff, c.MaxBackoff, err = backoffBounds("relay", c.MinBackoff, c.MaxBackoff, 100*time.Millisecond, time.Minute); err != nil {
		return c, err
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// NewRelay returns a relay from outbox to pub. Run starts it.
func NewRelay(outbox Outbox, pub Publisher, cfg RelayConfig) *Relay {
	return &Relay{outbox: outbox, pub: pub, cfg: cfg}
}

// markTimeout bounds how long a stopping relay waits to record a
// delivery it finished.
const markTimeout = 5 * time.Second

// RelayLease is the name of the lease a relay with a Locker holds while
// it delivers.
const RelayLease = "es-relay"

// Run delivers messages until ctx ends, then returns nil. It returns an
// error if the configuration is invalid (wrapping [ErrInvalidConfig]), or
// if the outbox or the Locker failed more than MaxOutageRetries times in a
// row: then every worker stops, and the error says why.
func (r *Relay) Run(ctx context.Context) error {
	cfg, err := r.cfg.withDefaults()
	if err != nil {
		return err
	}
	if r.outbox == nil || r.pub == nil {
		return fmt.Errorf("%w: relay: the outbox and the publisher are required", ErrInvalidConfig)
	}
	r.cfg = cfg
	if r.cfg.Locker == nil {
		return r.deliver(ctx)
	}
	failures := 0
	for ctx.Err() == nil {
		held, release, err := r.cfg.Locker.Lock(ctx, RelayLease)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			failures++
			if failures > r.cfg.MaxOutageRetries {
				return fmt.Errorf("es: relay: taking the lease failed %d times in a row: %w", failures, err)
			}
			r.cfg.Logger.WarnContext(ctx, "relay: taking the lease failed", "failures", failures, "err", err)
			sleep(ctx, jitter(min(r.cfg.MinBackoff<<min(failures, 30), r.cfg.MaxBackoff)))
			continue
		}
		failures = 0
		err = r.deliver(held)
		release()
		if err != nil {
			return err
		}
		if ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "relay: lease lost; waiting to take it again", "cause", context.Cause(held))
		}
	}
	return nil
}

// deliver runs the workers until ctx ends (then it returns nil) or one of
// them returns an error.
func (r *Relay) deliver(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for w := range r.cfg.Workers {
		var buckets []int
		for b := w; b < OutboxBuckets; b += r.cfg.Workers {
			buckets = append(buckets, b)
		}
		wg.Go(func() {
			if err := r.worker(ctx, w, buckets); err != nil {
				errOnce.Do(func() { firstErr = err })
				cancel(err)
			}
		})
	}
	wg.Wait()
	return firstErr
}

// worker delivers its buckets' messages until ctx ends, or returns the
// error that outlasted MaxOutageRetries retries.
func (r *Relay) worker(ctx context.Context, w int, buckets []int) error {
	failures := 0
	for ctx.Err() == nil {
		n, err := r.deliverDue(ctx, buckets)
		if err != nil && ctx.Err() == nil {
			failures++
			if failures > r.cfg.MaxOutageRetries {
				return fmt.Errorf("es: relay worker %d: the outbox failed %d times in a row: %w", w, failures, err)
			}
			r.cfg.Logger.WarnContext(ctx, "relay: the outbox failed", "worker", w, "failures", failures, "err", err)
			sleep(ctx, jitter(min(r.cfg.MinBackoff<<min(failures, 30), r.cfg.MaxBackoff)))
			continue
		}
		failures = 0
		if n < r.cfg.BatchSize {
			sleep(ctx, r.cfg.PollInterval)
		}
	}
	return nil
}

// deliverDue delivers one batch of due messages. It returns how many it
// fetched.
func (r *Relay) deliverDue(ctx context.Context, buckets []int) (int, error) {
	now := r.cfg.Clock.Now()
	msgs, err := r.outbox.Due(ctx, now, buckets, r.cfg.BatchSize)
	if err != nil {
		return 0, err
	}
	if r.cfg.Observer != nil {
		if n, err := r.outbox.Backlog(ctx); err == nil {
			r.cfg.Observer.ObserveBacklog(n)
		}
	}
	held := make(map[string]bool) // keys with a failed message in this batch
	for _, m := range msgs {
		if ctx.Err() != nil {
			return len(msgs), nil
		}
		if held[m.Key] {
			continue
		}
		start := time.Now()
		perr := r.pub.Publish(ctx, m.Message)
		if r.cfg.Observer != nil {
			r.cfg.Observer.ObserveDelivery(m.Message, time.Since(start), perr)
		}
		if perr == nil {
			// A delivery that succeeded is recorded even when the relay is
			// stopping, so that a graceful stop or hand-over does not
			// deliver it again.
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markTimeout)
			err := r.outbox.MarkDelivered(mctx, m.Seq)
			cancel()
			if err != nil {
				return len(msgs), err
			}
			if ctx.Err() != nil {
				return len(msgs), nil
			}
			continue
		}
		if ctx.Err() != nil {
			// The failure may be the stop itself: not the message's fault.
			return len(msgs), nil
		}
		held[m.Key] = true
		attempts := m.Attempts + 1
		park := attempts >= r.cfg.MaxAttempts
		backoff := r.cfg.MinBackoff << min(attempts-1, 30)
		if backoff <= 0 || backoff > r.cfg.MaxBackoff {
			backoff = r.cfg.MaxBackoff
		}
		retryAt := now.Add(backoff/2 + jitter(backoff/2))
		level := slog.LevelWarn
		if park {
			level = slog.LevelError
		}
		r.cfg.Logger.Log(ctx, level, "relay: delivery failed", "message", m.ID, "type", m.Type, "key", m.Key,
			"attempts", attempts, "parked", park, "err", perr)
		if err := r.outbox.MarkFailed(ctx, m.Seq, retryAt, park, perr.Error()); err != nil {
			return len(msgs), err
		}
	}
	return len(msgs), nil
}

// Bus is an in-process [Publisher]: it hands each message to the handlers
// subscribed to its type, in the order they subscribed. It suits a single
// binary whose modules talk through the outbox. If a handler fails,
// Publish fails and the relay delivers the message again to every handler,
// so handlers must deduplicate (an [Inbox]).
//
// Each handler's context carries the message's correlation
// ([WithMessage]), so a command a handler runs is correlated with the
// message that caused it.
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
	ctx = WithMessage(ctx, m)
	var errs []error
	for _, h := range hs {
		if err := h(ctx, m); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
