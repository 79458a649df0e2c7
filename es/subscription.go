package es

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Consumer is what a [Subscription] feeds. It remembers how far it got: its
// checkpoint is the position of the last event it handled.
//
// A consumer that writes a read model should record the checkpoint in the
// same transaction as the read model's changes (the SQL stores provide
// such consumers): then a crash can neither lose an event nor apply one
// twice. A consumer with effects outside its database (sending mail, say)
// is at-least-once, and must make its effects idempotent.
type Consumer interface {
	// Checkpoint returns the position of the last event handled, 0 if none.
	Checkpoint(ctx context.Context) (int64, error)
	// Handle handles a batch of events, in order, and records the last
	// one's position as the checkpoint. It either does all of that or, on
	// error, nothing that a retry would repeat wrongly.
	Handle(ctx context.Context, batch []Event) error
}

// CheckpointStore keeps subscriptions' checkpoints by name.
type CheckpointStore interface {
	// LoadCheckpoint returns the saved position, 0 if none was saved.
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
	// SaveCheckpoint saves position as name's checkpoint.
	SaveCheckpoint(ctx context.Context, name string, position int64) error
}

// EventHandlerFunc handles one event.
type EventHandlerFunc func(ctx context.Context, e Event) error

// AtLeastOnce returns a Consumer that calls handle for each event and then
// saves the checkpoint in cps under name. A crash between the two means the
// events after the saved checkpoint are handled again, so handle must be
// idempotent.
func AtLeastOnce(name string, cps CheckpointStore, handle EventHandlerFunc) Consumer {
	return &atLeastOnce{name: name, cps: cps, handle: handle}
}

type atLeastOnce struct {
	name   string
	cps    CheckpointStore
	handle EventHandlerFunc
}

func (c *atLeastOnce) Checkpoint(ctx context.Context) (int64, error) {
	return c.cps.LoadCheckpoint(ctx, c.name)
}

func (c *atLeastOnce) Handle(ctx context.Context, batch []Event) error {
	for i, e := range batch {
		if err := c.handle(ctx, e); err != nil {
			if i > 0 {
				// Keep the progress made, so a retry starts at the failure.
				if serr := c.cps.SaveCheckpoint(ctx, c.name, batch[i-1].Position); serr != nil {
					return errors.Join(err, serr)
				}
			}
			return err
		}
	}
	return c.cps.SaveCheckpoint(ctx, c.name, batch[len(batch)-1].Position)
}

// Locker grants exclusive, named leases across processes, so that one
// subscription has one active consumer at a time.
type Locker interface {
	// Lock blocks until it holds the lease called name or ctx ends. It
	// returns a context that is cancelled when the lease is lost (its
	// holder's connection died, say) and a function that releases it.
	Lock(ctx context.Context, name string) (held context.Context, release func(), err error)
}

// HandlerError reports an event that a subscription's consumer kept
// failing on. The subscription stops rather than skip the event: a read
// model that silently missed an event would be wrong ever after. Fix the
// cause and restart; the subscription resumes at that event.
type HandlerError struct {
	Subscription string
	Event        Event
	Attempts     int
	Err          error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("es: subscription %s stopped at event %s (%s, stream %s, version %d, position %d) after %d attempts: %v",
		e.Subscription, e.Event.ID, e.Event.Type, e.Event.StreamID, e.Event.Version, e.Event.Position, e.Attempts, e.Err)
}

func (e *HandlerError) Unwrap() error { return e.Err }

// Subscription follows the store's global order and feeds a Consumer: it
// catches up from the consumer's checkpoint in batches, then follows new
// events as they are appended (woken by the store's [Notifier] if it has
// one, polling otherwise).
//
// When the consumer fails, the subscription retries with exponential
// backoff, narrowing to one event at a time to find the one that fails;
// after MaxAttempts failures of that event, Run returns a *[HandlerError].
type Subscription struct {
	name     string
	store    Store
	consumer Consumer
	cfg      subscriptionConfig
}

type subscriptionConfig struct {
	query        AllQuery
	batchSize    int
	pollInterval time.Duration
	maxAttempts  int
	minBackoff   time.Duration
	maxBackoff   time.Duration
	locker       Locker
	metrics      *SubscriptionMetrics
	logger       *slog.Logger
}

// SubscriptionOption configures a [Subscription].
type SubscriptionOption func(*subscriptionConfig)

// Filter keeps only events of these categories and types (see [AllQuery]).
func Filter(categories, types []string) SubscriptionOption {
	return func(c *subscriptionConfig) { c.query.Categories, c.query.Types = categories, types }
}

// BatchSize sets how many events a Consumer gets at once (default 256).
func BatchSize(n int) SubscriptionOption {
	return func(c *subscriptionConfig) { c.batchSize = max(n, 1) }
}

// PollInterval sets how often a caught-up subscription looks for new
// events when the store cannot notify it, and as a safety net when it
// can (default 1s).
func PollInterval(d time.Duration) SubscriptionOption {
	return func(c *subscriptionConfig) { c.pollInterval = d }
}

// Retry sets how often one event is tried before the subscription stops
// (default 5), and the bounds of the backoff between tries (default 50ms
// to 5s).
func Retry(maxAttempts int, minBackoff, maxBackoff time.Duration) SubscriptionOption {
	return func(c *subscriptionConfig) {
		c.maxAttempts, c.minBackoff, c.maxBackoff = max(maxAttempts, 1), minBackoff, max(maxBackoff, minBackoff)
	}
}

// Exclusive makes the subscription take a lease from l before it handles
// anything, so that across processes one instance is active and the others
// wait to take over when it dies.
func Exclusive(l Locker) SubscriptionOption {
	return func(c *subscriptionConfig) { c.locker = l }
}

// WithSubscriptionMetrics reports the subscription's position, lag, errors
// and handling time to m.
func WithSubscriptionMetrics(m *SubscriptionMetrics) SubscriptionOption {
	return func(c *subscriptionConfig) { c.metrics = m }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) SubscriptionOption {
	return func(c *subscriptionConfig) { c.logger = l }
}

// NewSubscription returns a subscription called name that feeds consumer
// from store. Run starts it.
func NewSubscription(name string, store Store, consumer Consumer, opts ...SubscriptionOption) *Subscription {
	cfg := subscriptionConfig{
		batchSize: 256, pollInterval: time.Second,
		maxAttempts: 5, minBackoff: 50 * time.Millisecond, maxBackoff: 5 * time.Second,
		logger: slog.Default(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	return &Subscription{name: name, store: store, consumer: consumer, cfg: cfg}
}

// Name returns the subscription's name.
func (s *Subscription) Name() string { return s.name }

// Run handles events until ctx ends (then it returns nil) or the consumer
// keeps failing on an event (then a *HandlerError). With [Exclusive], it
// first waits for the lease, and when the lease is lost it stops handling
// and waits for it again.
func (s *Subscription) Run(ctx context.Context) error {
	if s.cfg.locker == nil {
		return s.follow(ctx)
	}
	for {
		held, release, err := s.cfg.locker.Lock(ctx, "es-subscription:"+s.name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("es: subscription %s: take lease: %w", s.name, err)
		}
		s.cfg.logger.InfoContext(ctx, "subscription active", "subscription", s.name)
		err = s.follow(held)
		release()
		if err != nil || ctx.Err() != nil {
			return err
		}
		s.cfg.logger.WarnContext(ctx, "subscription lost its lease", "subscription", s.name)
	}
}

// follow catches up and then follows new events until ctx ends.
func (s *Subscription) follow(ctx context.Context) error {
	var wake <-chan struct{}
	if n, ok := s.store.(Notifier); ok {
		// Listen before the first read, so no append falls between the
		// read that finds nothing new and the wait.
		wake = n.Notify(ctx)
	}
	poll := time.NewTicker(s.cfg.pollInterval)
	defer poll.Stop()
	for {
		caughtUp, err := s.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if !caughtUp {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// step handles one batch. It reports whether the subscription has caught up.
func (s *Subscription) step(ctx context.Context) (bool, error) {
	checkpoint, err := s.withRetry(ctx, nil, func() (int64, error) { return s.consumer.Checkpoint(ctx) })
	if err != nil {
		return false, err
	}
	q := s.cfg.query
	q.After, q.Limit = checkpoint, s.cfg.batchSize
	batch, err := Collect(s.store.ReadAll(ctx, q))
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		s.cfg.logger.WarnContext(ctx, "subscription read failed", "subscription", s.name, "err", err)
		return true, nil // wait for the next poll and try again
	}
	caughtUp := len(batch) < s.cfg.batchSize
	if len(batch) > 0 {
		if err := s.handle(ctx, batch); err != nil {
			return false, err
		}
		checkpoint = batch[len(batch)-1].Position
	}
	// A caught-up subscription has no lag, even if its checkpoint trails
	// the head because the events after it are not for it (Filter).
	s.cfg.metrics.observePosition(ctx, s, checkpoint, caughtUp)
	return caughtUp, nil
}

// handle hands batch to the consumer. On failure it retries one event at a
// time, so that the event that fails is known and everything before it is
// handled.
func (s *Subscription) handle(ctx context.Context, batch []Event) error {
	start := time.Now()
	err := s.consumer.Handle(ctx, batch)
	s.cfg.metrics.observeHandled(s.name, start, len(batch), err)
	if err == nil || ctx.Err() != nil {
		return nil
	}
	s.cfg.logger.WarnContext(ctx, "subscription handler failed; retrying event by event",
		"subscription", s.name, "from", batch[0].Position, "events", len(batch), "err", err)
	for _, e := range batch {
		// The consumer may have handled a prefix of the batch before it
		// failed: skip what its checkpoint already covers.
		cp, err := s.withRetry(ctx, nil, func() (int64, error) { return s.consumer.Checkpoint(ctx) })
		if err != nil {
			return err
		}
		if e.Position <= cp {
			continue
		}
		if _, err := s.withRetry(ctx, &e, func() (int64, error) {
			start := time.Now()
			err := s.consumer.Handle(ctx, []Event{e})
			s.cfg.metrics.observeHandled(s.name, start, 1, err)
			return 0, err
		}); err != nil {
			return err
		}
	}
	return nil
}

// withRetry calls fn until it succeeds, ctx ends, or it has failed
// maxAttempts times. Failures on an event e become a *HandlerError.
func (s *Subscription) withRetry(ctx context.Context, e *Event, fn func() (int64, error)) (int64, error) {
	backoff := s.cfg.minBackoff
	for attempt := 1; ; attempt++ {
		v, err := fn()
		if err == nil || ctx.Err() != nil {
			return v, nil
		}
		if attempt >= s.cfg.maxAttempts {
			if e != nil {
				return 0, &HandlerError{Subscription: s.name, Event: *e, Attempts: attempt, Err: err}
			}
			return 0, fmt.Errorf("es: subscription %s: read checkpoint: %w", s.name, err)
		}
		s.cfg.logger.WarnContext(ctx, "subscription retrying", "subscription", s.name, "attempt", attempt, "err", err)
		// Full jitter, so that many failing subscriptions do not retry in step.
		wait := time.Duration(rand.Int64N(int64(backoff) + 1))
		select {
		case <-ctx.Done():
			return 0, nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, s.cfg.maxBackoff)
	}
}
