package natsjs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
)

// Handler handles one message. It runs inside [es.Inbox.Handle]: with a
// SQL store's inbox, the transaction that records the message is in ctx
// (sqlite.TxFrom, postgres.TxFrom), and an effect written through it
// takes place exactly once. An error rolls the handling back, and the
// message is delivered again after a backoff — before any later message
// of its bucket. ctx also carries the message's correlation
// ([es.WithMessage]), so the commands the handler runs continue it.
type Handler func(ctx context.Context, m es.Message) error

// SubscriberConfig configures a [Subscriber]. The zero value is a working
// configuration: each field says its default.
type SubscriberConfig struct {
	// Stream and Subject name the stream and the subjects' prefix, as in
	// [PublisherConfig] (defaults [DefaultStream] and [DefaultSubject]).
	// If the stream does not exist, Run creates it as [NewPublisher]
	// would, with the default duplicate window.
	Stream, Subject string
	// Types, when set, are the message types the handler sees. The
	// subscriber still receives every message of the stream, since the
	// order of a key holds across types, and acknowledges the others
	// without handling them.
	Types []string
	// AckWait is how long JetStream waits for the acknowledgement of a
	// message before it delivers it again (default 30s). It must exceed
	// the time a handling takes; it is also how long a bucket whose
	// subscriber died holding a message waits before the message goes to
	// another subscriber of the same name.
	AckWait time.Duration
	// MinBackoff and MaxBackoff bound the wait before a message whose
	// handling failed is delivered again, doubling with each delivery,
	// with jitter (defaults 100ms and 1m; a default gives way to the other
	// field when only that one is set). MinBackoff above MaxBackoff is an
	// invalid configuration. A message is never given up: a handler that
	// keeps failing holds back its bucket, as a parked message holds back
	// its key in the outbox.
	MinBackoff, MaxBackoff time.Duration
	// MaxOutageRetries is how many times in a row Run retries setting up
	// a bucket's consumer (JetStream unreachable, say) before it stops
	// and returns the last error (default 30; with the backoff capped at
	// MaxBackoff, half an hour of outage).
	MaxOutageRetries int
	// Logger receives failed handlings and consumer outages (default
	// slog.Default()).
	Logger *slog.Logger
}

func (c SubscriberConfig) withDefaults(name string) (SubscriberConfig, error) {
	if c.AckWait < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 || c.MaxOutageRetries < 0 {
		return c, fmt.Errorf("%w: natsjs: negative AckWait, MaxOutageRetries or backoff", es.ErrInvalidConfig)
	}
	if name == "" || strings.ContainsAny(name, ".*> \t\r\n") {
		return c, fmt.Errorf("%w: natsjs: subscriber name %q is empty or has a '.', '*', '>' or a space", es.ErrInvalidConfig, name)
	}
	c.Stream = cmp.Or(c.Stream, DefaultStream)
	c.Subject = cmp.Or(c.Subject, DefaultSubject)
	if err := checkNames(c.Stream, c.Subject); err != nil {
		return c, err
	}
	c.AckWait = cmp.Or(c.AckWait, 30*time.Second)
	c.MaxOutageRetries = cmp.Or(c.MaxOutageRetries, 30)
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		return c, fmt.Errorf("%w: natsjs: MinBackoff %v is above MaxBackoff %v", es.ErrInvalidConfig, c.MinBackoff, c.MaxBackoff)
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 100 * time.Millisecond
		if c.MaxBackoff > 0 {
			c.MinBackoff = min(c.MinBackoff, c.MaxBackoff)
		}
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(time.Minute, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Subscriber receives the messages of a JetStream stream and hands them
// to a [Handler] through an [es.Inbox], in order per key, each with one
// effect.
//
// It has one durable pull consumer per bucket ([es.OutboxBuckets] of
// them), named <name>-<bucket>, each filtering the subjects
// <Subject>.<bucket>.> and allowing one unacknowledged message: a bucket's
// next message comes only once the previous one is acknowledged, and the
// acknowledgement is sent only after the inbox's transaction committed.
// The consumers outlive the process: a subscriber of the same name,
// here or in another process, carries on where this one stopped. Two
// running at once share the work, bucket by bucket, and keep the order.
//
// A Subscriber is safe for concurrent use, but Run it once at a time.
type Subscriber struct {
	js      jetstream.JetStream
	name    string
	inbox   es.Inbox
	handler Handler
	cfg     SubscriberConfig
}

// NewSubscriber returns a subscriber called name (its consumers' names and
// its name in the inbox) that hands messages to h through inbox. Run
// starts it.
func NewSubscriber(js jetstream.JetStream, name string, inbox es.Inbox, h Handler, cfg SubscriberConfig) *Subscriber {
	return &Subscriber{js: js, name: name, inbox: inbox, handler: h, cfg: cfg}
}

// Run receives and handles messages until ctx ends, then returns nil. It
// returns an error wrapping [es.ErrInvalidConfig] for an invalid
// configuration, and an error when setting up a bucket's consumer failed
// more than MaxOutageRetries times in a row; then every bucket stops.
// Handlings in progress when ctx ends are rolled back (the context they
// run with ends too), and their messages delivered again later.
func (s *Subscriber) Run(ctx context.Context) error {
	cfg, err := s.cfg.withDefaults(s.name)
	if err != nil {
		return err
	}
	if s.inbox == nil || s.handler == nil {
		return fmt.Errorf("%w: natsjs: subscriber %s without an inbox or a handler", es.ErrInvalidConfig, s.name)
	}
	var types map[string]bool
	if len(cfg.Types) > 0 {
		types = make(map[string]bool, len(cfg.Types))
		for _, t := range cfg.Types {
			types[t] = true
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for b := range es.OutboxBuckets {
		w := &bucket{s: s, cfg: cfg, types: types, n: b}
		wg.Go(func() {
			if err := w.run(ctx); err != nil {
				errOnce.Do(func() { firstErr = err })
				cancel(err)
			}
		})
	}
	wg.Wait()
	return firstErr
}

// bucket receives the messages of one bucket.
type bucket struct {
	s     *Subscriber
	cfg   SubscriberConfig
	types map[string]bool
	n     int
}

func (w *bucket) consumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       w.s.name + "-" + strconv.Itoa(w.n),
		Description:   "es messages of bucket " + strconv.Itoa(w.n) + " for " + w.s.name,
		FilterSubject: w.cfg.Subject + "." + strconv.Itoa(w.n) + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		// One message in flight: the bucket's order survives redeliveries.
		MaxAckPending: 1,
		// Never give a message up: skipping one would break its key's order.
		MaxDeliver: -1,
	}
}

// run receives the bucket's messages until ctx ends, setting its consumer
// up again whenever the iterator closes.
func (w *bucket) run(ctx context.Context) error {
	failures := 0
	for ctx.Err() == nil {
		it, err := w.open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			if failures > w.cfg.MaxOutageRetries {
				return fmt.Errorf("natsjs: subscriber %s, bucket %d: setting up the consumer failed %d times in a row: %w",
					w.s.name, w.n, failures, err)
			}
			w.cfg.Logger.WarnContext(ctx, "natsjs: setting up a consumer failed", "subscriber", w.s.name,
				"bucket", w.n, "failures", failures, "err", err)
			sleep(ctx, jitter(min(w.cfg.MinBackoff<<min(failures, 30), w.cfg.MaxBackoff)))
			continue
		}
		failures = 0
		w.receive(ctx, it)
		it.Stop()
	}
	return nil
}

// open makes sure the stream and the bucket's consumer exist and returns
// an iterator over its messages.
func (w *bucket) open(ctx context.Context) (jetstream.MessagesContext, error) {
	if err := ensureStream(ctx, w.s.js, w.cfg.Stream, w.cfg.Subject, 0); err != nil {
		return nil, err
	}
	c, err := w.s.js.CreateOrUpdateConsumer(ctx, w.cfg.Stream, w.consumerConfig())
	if err != nil {
		return nil, fmt.Errorf("natsjs: consumer %s-%d: %w", w.s.name, w.n, err)
	}
	// A missing heartbeat is not an error here: the iterator pulls again.
	return c.Messages(jetstream.PullMaxMessages(8), jetstream.WithMessagesErrOnMissingHeartbeat(false))
}

// receive handles the iterator's messages until ctx ends or the iterator
// closes.
func (w *bucket) receive(ctx context.Context, it jetstream.MessagesContext) {
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			w.cfg.Logger.DebugContext(ctx, "natsjs: receiving", "subscriber", w.s.name, "bucket", w.n, "err", err)
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) {
				return
			}
			sleep(ctx, w.cfg.MinBackoff) // no busy loop on an error that repeats
			continue
		}
		w.handle(ctx, msg)
	}
}

// handle hands msg to the handler through the inbox and acknowledges it
// once the inbox's transaction committed, or asks for it again later.
func (w *bucket) handle(ctx context.Context, msg jetstream.Msg) {
	m, err := decode(msg.Headers(), msg.Data())
	if err != nil {
		// Without an ID no inbox can tell a redelivery: it can never be
		// handled. It was not published by a natsjs.Publisher.
		w.cfg.Logger.ErrorContext(ctx, "natsjs: dropping a message that is not an es message", "subscriber", w.s.name,
			"subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if w.types != nil && !w.types[m.Type] {
		_ = msg.Ack()
		return
	}
	_, err = w.s.inbox.Handle(ctx, w.s.name, m.ID, func(ctx context.Context) error {
		// The handler's commands continue the message's correlation.
		return w.s.handler(es.WithMessage(ctx, m), m)
	})
	if err != nil {
		if ctx.Err() != nil {
			// Stopping: let the next subscriber have it at once.
			_ = msg.Nak()
			return
		}
		delivered := uint64(1)
		if md, err := msg.Metadata(); err == nil {
			delivered = md.NumDelivered
		}
		backoff := w.cfg.MinBackoff << min(delivered-1, 30)
		if backoff <= 0 || backoff > w.cfg.MaxBackoff {
			backoff = w.cfg.MaxBackoff
		}
		backoff = backoff/2 + jitter(backoff/2)
		w.cfg.Logger.WarnContext(ctx, "natsjs: handling failed", "subscriber", w.s.name, "message", m.ID,
			"type", m.Type, "key", m.Key, "deliveries", delivered, "retry_in", backoff, "err", err)
		_ = msg.NakWithDelay(backoff)
		return
	}
	// The inbox's transaction has committed: a redelivery of msg, if this
	// acknowledgement is lost, finds it in the inbox.
	_ = msg.Ack()
}

// jitter returns a random duration between 0 and d.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
