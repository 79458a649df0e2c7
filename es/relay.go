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
// # Several processes
//
// With a Locker that is a [TryLocker] (those of es/postgres, es/sqlite
// and es/memory are), relays in several processes share the outbox. The
// buckets form [RelayGroups] groups (bucket b is in group b %
// RelayGroups), and a relay delivers the buckets of the groups whose
// lease, "es-relay:<group>", it holds. The groups are fixed, whatever the
// relays' Workers, so that relays configured differently (a rolling
// deploy that changes the setting) never serve one bucket together: a
// bucket is served by whoever holds its group's lease, and by one worker
// there. Each relay also holds a membership lease ("es-relay-member:<n>",
// the first free n below RelayGroups) and, every RebalanceInterval,
// counts the membership leases held, so it knows how many relays are
// alive without a table of its own; it then holds its fair share,
// RelayGroups / relays groups, one more for the first RelayGroups % relays
// of them by slot (so the shares add up to every group, and no relay is
// idle while there are groups to hold): it takes free groups (those of a
// relay that stopped or died) up to its share, and gives up the groups
// beyond it once it has seen the smaller share twice in a row (so that a
// count taken while a peer was looking does not shuffle groups around).
// It gives a group up only after its workers have finished and recorded
// the deliveries in flight, so the next holder does not deliver a
// message of that group while it still does. When a lease is lost (its
// connection died), the relay stops delivering at once: the workers'
// context is cancelled, and the relay takes groups again at its next
// look. So a second relay gets its share within about three
// RebalanceIntervals; when a relay stops, the others take its groups
// within one; when one dies, within one after the Locker has noticed
// (on PostgreSQL, at once when a process dies, since the server ends the
// session of a closed connection).
//
// With a Locker that is not a TryLocker, the relay takes one lease,
// named [RelayLease], before any worker starts, and its workers stop when
// the lease is lost: any number of processes can run the relay, one of
// them delivers and the others stand by to take over. Do not mix the two
// kinds of Locker on one outbox: they do not exclude each other.
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
	// Locker, when set, lets relays in several processes work together:
	// with a [TryLocker] they share the bucket groups, with another
	// Locker one of them holds [RelayLease] and delivers while the others
	// stand by (see [Relay]).
	Locker Locker
	// RebalanceInterval is how often a relay sharing the outbox (its
	// Locker is a [TryLocker]) counts its peers and takes or gives up
	// groups, give or take a fifth for jitter (default 1s). It bounds how
	// long a group stays without a relay after its relay stopped or died.
	// Setting it without such a Locker, or above an hour, is an invalid
	// configuration.
	RebalanceInterval time.Duration
	// Observer, when set, is told of deliveries and the backlog
	// (esgo.dev/es/esprom has one for Prometheus).
	Observer RelayObserver
	// Logger receives failed deliveries (default slog.Default()).
	Logger *slog.Logger
}

func (c RelayConfig) withDefaults() (RelayConfig, error) {
	if c.Workers < 0 || c.BatchSize < 0 || c.PollInterval < 0 || c.MaxAttempts < 0 || c.MaxOutageRetries < 0 ||
		c.MinBackoff < 0 || c.MaxBackoff < 0 || c.RebalanceInterval < 0 {
		return c, fmt.Errorf("%w: relay: negative Workers, BatchSize, PollInterval, MaxAttempts, MaxOutageRetries, backoff or RebalanceInterval", ErrInvalidConfig)
	}
	if c.Workers > OutboxBuckets {
		return c, fmt.Errorf("%w: relay: %d workers, but there are only %d buckets", ErrInvalidConfig, c.Workers, OutboxBuckets)
	}
	if _, ok := c.Locker.(TryLocker); c.RebalanceInterval != 0 && !ok {
		return c, fmt.Errorf("%w: relay: RebalanceInterval is set, but the Locker (%T) is not a TryLocker: "+
			"the relay would not share the outbox", ErrInvalidConfig, c.Locker)
	}
	c.Workers = cmp.Or(c.Workers, 1)
	c.BatchSize = cmp.Or(c.BatchSize, 100)
	c.PollInterval = cmp.Or(c.PollInterval, 100*time.Millisecond)
	c.MaxAttempts = cmp.Or(c.MaxAttempts, 10)
	c.MaxOutageRetries = cmp.Or(c.MaxOutageRetries, 30)
	if _, ok := c.Locker.(TryLocker); ok {
		c.RebalanceInterval = cmp.Or(c.RebalanceInterval, time.Second)
	}
	if c.RebalanceInterval > maxRebalanceInterval {
		return c, fmt.Errorf("%w: relay: RebalanceInterval %v is above %v", ErrInvalidConfig, c.RebalanceInterval, maxRebalanceInterval)
	}
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

// maxRebalanceInterval bounds RebalanceInterval: a relay that looks for
// its peers less often than hourly does not share in any useful sense,
// and the wait computed from it must not overflow.
const maxRebalanceInterval = time.Hour

// markTimeout bounds how long a stopping relay waits to record a
// delivery it finished.
const markTimeout = 5 * time.Second

// RelayLease is the name of the lease a relay holds while it delivers
// when its Locker is not a [TryLocker].
const RelayLease = "es-relay"

// RelayGroups is the number of groups the buckets form for relays that
// share an outbox: bucket b is in group b % RelayGroups. It is also the
// most relays that can deliver at once; more stand by.
const RelayGroups = 16

// relayGroupLease is the name of the lease of bucket group g.
func relayGroupLease(g int) string { return fmt.Sprintf("%s:%d", RelayLease, g) }

// relayMemberLease is the name of membership lease n.
func relayMemberLease(n int) string { return fmt.Sprintf("%s-member:%d", RelayLease, n) }

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
	// Each run works on its own copy: the relay's configuration stays as it
	// was given, so that it can be Run again (a supervisor restarting it).
	r = &Relay{outbox: r.outbox, pub: r.pub, cfg: cfg}
	if r.cfg.Locker == nil {
		return r.deliver(ctx, ctx, allBuckets())
	}
	if tl, ok := r.cfg.Locker.(TryLocker); ok {
		return r.share(ctx, tl)
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
			sleep(ctx, r.outageBackoff(failures))
			continue
		}
		failures = 0
		err = r.deliver(held, held, allBuckets())
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

// outageBackoff is the wait after the failures-th failure in a row of
// the outbox or the Locker.
func (r *Relay) outageBackoff(failures int) time.Duration {
	return jitter(min(r.cfg.MinBackoff<<min(failures, 30), r.cfg.MaxBackoff))
}

func allBuckets() []int {
	b := make([]int, OutboxBuckets)
	for i := range b {
		b[i] = i
	}
	return b
}

// deliver runs the workers over buckets until soft ends (then they
// finish the message at hand, and deliver returns nil) or one of them
// returns an error. When hard ends, the deliveries in flight are
// cancelled too.
func (r *Relay) deliver(hard, soft context.Context, buckets []int) error {
	hard, cancel := context.WithCancelCause(hard)
	defer cancel(nil)
	soft, cancelSoft := context.WithCancel(soft)
	defer cancelSoft()
	defer context.AfterFunc(hard, cancelSoft)()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	owned := make([][]int, r.cfg.Workers)
	for _, b := range buckets {
		owned[b%r.cfg.Workers] = append(owned[b%r.cfg.Workers], b)
	}
	for w, buckets := range owned {
		if len(buckets) == 0 {
			continue
		}
		wg.Go(func() {
			if err := r.worker(hard, soft, w, buckets); err != nil {
				errOnce.Do(func() { firstErr = err })
				cancel(err)
			}
		})
	}
	wg.Wait()
	return firstErr
}

// worker delivers its buckets' messages until soft ends, or returns the
// error that outlasted MaxOutageRetries retries.
func (r *Relay) worker(hard, soft context.Context, w int, buckets []int) error {
	failures := 0
	for soft.Err() == nil {
		n, err := r.deliverDue(hard, soft, buckets)
		if err != nil && soft.Err() == nil {
			failures++
			if failures > r.cfg.MaxOutageRetries {
				return fmt.Errorf("es: relay worker %d: the outbox failed %d times in a row: %w", w, failures, err)
			}
			r.cfg.Logger.WarnContext(soft, "relay: the outbox failed", "worker", w, "failures", failures, "err", err)
			sleep(soft, r.outageBackoff(failures))
			continue
		}
		failures = 0
		if n < r.cfg.BatchSize {
			sleep(soft, r.cfg.PollInterval)
		}
	}
	return nil
}

// deliverDue delivers one batch of due messages, and stops between two
// messages when soft ends. It returns how many it fetched.
func (r *Relay) deliverDue(ctx, soft context.Context, buckets []int) (int, error) {
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
		if soft.Err() != nil {
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
