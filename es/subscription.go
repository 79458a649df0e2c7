package es

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
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

// TryLocker is a [Locker] that can also try a lease without waiting for
// it. A [Relay] whose Locker is a TryLocker shares the outbox with the
// relays of other processes (each takes some of the outbox's bucket
// groups) rather than standing by for one of them.
type TryLocker interface {
	Locker
	// TryLock takes the lease called name if nobody holds it, as Lock
	// does, and reports ok; if somebody holds it, it returns ok false at
	// once. It returns an error only when it cannot tell (the database
	// cannot be reached, or ctx ended). A name this process already holds
	// counts as held, whichever call took it.
	TryLock(ctx context.Context, name string) (held context.Context, release func(), ok bool, err error)
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
// A stored event that cannot be read ([ErrUnreadableEvent]) stops it the
// same way, after the events before it are handled: a read model that
// silently skipped an event would be wrong ever after. Other read errors
// (the store is unreachable) are retried at every poll, for as long as
// they last, and reported to the Observer.
//
// A Subscription is safe for concurrent use: one goroutine runs Run while
// others wait for it with [Subscription.WaitFor]. Run it once at a time.
type Subscription struct {
	name     string
	store    Store
	consumer Consumer
	cfg      SubscriptionConfig

	unreadable int // reads in a row that met an unreadable event (Run's goroutine only)

	waiters atomic.Int32  // goroutines in WaitFor: the next steps measure the head
	nudge   chan struct{} // a WaitFor wakes a caught-up subscription to measure it
	mu      sync.Mutex
	through int64         // every event up to here was handled or passed over
	moved   chan struct{} // closed and replaced when through grows
}

// SubscriptionConfig configures a [Subscription]. The zero value is a
// working configuration: each field says its default.
type SubscriptionConfig struct {
	// Categories and Types, when not empty, keep only events of these
	// categories and stored type names (see [AllQuery]).
	Categories, Types []string
	// BatchSize is how many events the Consumer gets at once (default 256).
	BatchSize int
	// PollInterval is how often a caught-up subscription looks for new
	// events when the store cannot notify it, and as a safety net when it
	// can (default 1s).
	PollInterval time.Duration
	// MaxAttempts is how often one event is tried before the subscription
	// stops with a *[HandlerError] (default 5).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between tries, which doubles
	// from one try to the next, with jitter (defaults 50ms and 5s; a
	// default gives way to the other field when only that one is set).
	// MinBackoff above MaxBackoff is an invalid configuration.
	MinBackoff, MaxBackoff time.Duration
	// Locker, when set, makes the subscription exclusive: it takes the
	// lease "es-subscription:<name>" before it handles anything, so that
	// across processes one instance is active and the others wait to take
	// over when it dies.
	Locker Locker
	// Observer, when set, is told of batches handled, the checkpoint and
	// the lag, and failed reads (esgo.dev/es/esprom has one for Prometheus).
	Observer SubscriptionObserver
	// Logger receives retries and lease changes (default slog.Default()).
	Logger *slog.Logger
}

// withDefaults fills in the zero fields, or says which field is invalid.
func (c SubscriptionConfig) withDefaults() (SubscriptionConfig, error) {
	if c.BatchSize < 0 || c.PollInterval < 0 || c.MaxAttempts < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return c, fmt.Errorf("%w: subscription: negative BatchSize, PollInterval, MaxAttempts or backoff", ErrInvalidConfig)
	}
	c.BatchSize = cmp.Or(c.BatchSize, 256)
	c.PollInterval = cmp.Or(c.PollInterval, time.Second)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 5)
	var err error
	if c.MinBackoff, c.MaxBackoff, err = backoffBounds("subscription", c.MinBackoff, c.MaxBackoff, 50*time.Millisecond, 5*time.Second); err != nil {
		return c, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// NewSubscription returns a subscription called name that feeds consumer
// from store. Run starts it.
func NewSubscription(name string, store Store, consumer Consumer, cfg SubscriptionConfig) *Subscription {
	return &Subscription{name: name, store: store, consumer: consumer, cfg: cfg,
		moved: make(chan struct{}), nudge: make(chan struct{}, 1)}
}

// Name returns the subscription's name.
func (s *Subscription) Name() string { return s.name }

// Run handles events until ctx ends (then it returns nil) or the consumer
// keeps failing on an event (then a *[HandlerError]). With a Locker, it
// first waits for the lease, and when the lease is lost it stops handling
// and waits for it again. An invalid configuration is reported at once,
// wrapping [ErrInvalidConfig].
func (s *Subscription) Run(ctx context.Context) error {
	cfg, err := s.cfg.withDefaults()
	if err != nil {
		return err
	}
	switch {
	case s.store == nil || s.consumer == nil:
		return fmt.Errorf("%w: subscription %q: the store and the consumer are required", ErrInvalidConfig, s.name)
	case !validName(s.name):
		return fmt.Errorf("%w: subscription name %q: want 1 to %d bytes of UTF-8 without NUL", ErrInvalidConfig, s.name, MaxIDLength)
	}
	s.cfg = cfg
	if s.cfg.Locker == nil {
		return s.follow(ctx)
	}
	for {
		held, release, err := s.cfg.Locker.Lock(ctx, "es-subscription:"+s.name)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("es: subscription %s: take lease: %w", s.name, err)
		}
		s.cfg.Logger.InfoContext(ctx, "subscription active", "subscription", s.name)
		err = s.follow(held)
		release()
		if err != nil || ctx.Err() != nil {
			return err
		}
		s.cfg.Logger.WarnContext(ctx, "subscription lost its lease", "subscription", s.name)
	}
}

// WaitFor blocks until the running subscription has handled every event
// up to position (an [AppendResult]'s Position, say), or passed over it
// because its filter leaves it out, or until ctx ends. It is how code that
// just appended waits to read its own write from a read model.
//
// A subscription whose filter leaves out the last events can prove that it
// passed them only when its store implements [HeadReader]; without one,
// WaitFor returns once the checkpoint reaches position.
func (s *Subscription) WaitFor(ctx context.Context, position int64) error {
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	select { // a caught-up subscription steps again, now measuring the head
	case s.nudge <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		through, moved := s.through, s.moved
		s.mu.Unlock()
		if through >= position {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("es: subscription %s is at %d, waiting for %d: %w", s.name, through, position, ctx.Err())
		case <-moved:
		}
	}
}

// WaitCaughtUp blocks until the running subscription has handled every
// event stored when it was called (see [Subscription.WaitFor]). The store
// must implement [HeadReader].
func (s *Subscription) WaitCaughtUp(ctx context.Context) error {
	hr, ok := s.store.(HeadReader)
	if !ok {
		return fmt.Errorf("es: subscription %s: store %T cannot tell its head", s.name, s.store)
	}
	head, err := hr.Head(ctx)
	if err != nil {
		return fmt.Errorf("es: subscription %s: %w", s.name, err)
	}
	return s.WaitFor(ctx, head)
}

// passed records that every event up to position was handled or passed over.
func (s *Subscription) passed(position int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if position > s.through {
		s.through = position
		close(s.moved)
		s.moved = make(chan struct{})
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
	poll := time.NewTicker(s.cfg.PollInterval)
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
		case <-s.nudge:
		}
	}
}

// step handles one batch. It reports whether the subscription has caught up.
func (s *Subscription) step(ctx context.Context) (bool, error) {
	checkpoint, err := s.withRetry(ctx, nil, func() (int64, error) { return s.consumer.Checkpoint(ctx) })
	if err != nil {
		return false, err
	}
	// The head read before the batch is a position that the batch, if it
	// turns out short, has read past: HeadReader promises that ReadAll
	// yields every event up to its head.
	head := int64(-1)
	hr, canHead := s.store.(HeadReader)
	if canHead && s.waiters.Load() > 0 {
		if h, err := hr.Head(ctx); err == nil {
			head = h
		}
	}
	q := AllQuery{After: checkpoint, Limit: s.cfg.BatchSize, Categories: s.cfg.Categories, Types: s.cfg.Types}
	batch, err := Collect(s.store.ReadAll(ctx, q))
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		if s.cfg.Observer != nil {
			s.cfg.Observer.ObserveReadError(s.name, err)
		}
		if len(batch) > 0 {
			// Handle the good events before the failure; the next step
			// reads from there and meets it again.
			if err := s.handle(ctx, batch); err != nil || ctx.Err() != nil {
				return false, err
			}
			s.passed(batch[len(batch)-1].Position)
			return false, nil
		}
		if errors.Is(err, ErrUnreadableEvent) {
			// A row that cannot be read is not going to heal by itself:
			// after a few tries, stop rather than skip it.
			s.unreadable++
			if s.unreadable >= s.cfg.MaxAttempts {
				return false, fmt.Errorf("es: subscription %s stopped after %d reads: %w", s.name, s.unreadable, err)
			}
			s.cfg.Logger.WarnContext(ctx, "subscription cannot read an event", "subscription", s.name, "attempt", s.unreadable, "err", err)
			sleep(ctx, jitter(min(s.cfg.MinBackoff<<s.unreadable, s.cfg.MaxBackoff)))
			return false, nil
		}
		s.cfg.Logger.WarnContext(ctx, "subscription read failed", "subscription", s.name, "err", err)
		return true, nil // the store may be down: wait for the next poll and try again
	}
	s.unreadable = 0
	caughtUp := len(batch) < s.cfg.BatchSize
	if len(batch) > 0 {
		if err := s.handle(ctx, batch); err != nil || ctx.Err() != nil {
			// Stopped mid-batch, the consumer may not have committed it:
			// claim nothing.
			return false, err
		}
		checkpoint = batch[len(batch)-1].Position
	}
	s.passed(checkpoint)
	if caughtUp && head >= 0 {
		s.passed(head)
	}
	if s.cfg.Observer != nil {
		// A caught-up subscription has no lag, even if its checkpoint
		// trails the head because the events after it are not for it.
		lag := int64(-1)
		switch {
		case caughtUp:
			lag = 0
		case canHead:
			if h, err := hr.Head(ctx); err == nil {
				lag = max(h-checkpoint, 0)
			}
		}
		s.cfg.Observer.ObservePosition(s.name, checkpoint, lag)
	}
	return caughtUp, nil
}

// handle hands batch to the consumer. On failure it retries one event at a
// time, so that the event that fails is known and everything before it is
// handled.
func (s *Subscription) handle(ctx context.Context, batch []Event) error {
	err := s.handleBatch(ctx, batch)
	if err == nil || ctx.Err() != nil {
		return nil
	}
	s.cfg.Logger.WarnContext(ctx, "subscription handler failed; retrying event by event",
		"subscription", s.name, "from", batch[0].Position, "events", len(batch), "err", err)
	for _, e := range batch {
		if ctx.Err() != nil {
			// Stopped while an earlier event was being retried: it may not
			// be handled, so no later one may be.
			return nil
		}
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
			return 0, s.handleBatch(ctx, []Event{e})
		}); err != nil || ctx.Err() != nil {
			return err
		}
	}
	return nil
}

// handleBatch calls the consumer once and tells the observer.
func (s *Subscription) handleBatch(ctx context.Context, batch []Event) error {
	start := time.Now()
	err := s.consumer.Handle(ctx, batch)
	if s.cfg.Observer != nil {
		s.cfg.Observer.ObserveBatch(s.name, len(batch), time.Since(start), err)
	}
	return err
}

// withRetry calls fn until it succeeds, ctx ends, or it has failed
// MaxAttempts times. Failures on an event e become a *HandlerError.
func (s *Subscription) withRetry(ctx context.Context, e *Event, fn func() (int64, error)) (int64, error) {
	backoff := s.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		v, err := fn()
		if err == nil || ctx.Err() != nil {
			return v, nil
		}
		if attempt >= s.cfg.MaxAttempts {
			if e != nil {
				return 0, &HandlerError{Subscription: s.name, Event: *e, Attempts: attempt, Err: err}
			}
			return 0, fmt.Errorf("es: subscription %s: read checkpoint: %w", s.name, err)
		}
		s.cfg.Logger.WarnContext(ctx, "subscription retrying", "subscription", s.name, "attempt", attempt, "err", err)
		if !sleep(ctx, jitter(backoff)) {
			return 0, nil
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}
