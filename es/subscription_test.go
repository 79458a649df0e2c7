package es_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"esgo.dev/es"
	"esgo.dev/es/esprom"
	"esgo.dev/es/memory"
)

// ledger is a Consumer that applies a batch and its checkpoint under one
// lock: the in-memory model of a read model and its checkpoint committed
// in one transaction.
type ledger struct {
	mu         sync.Mutex
	checkpoint int64
	seen       []es.Event
	failOn     func(e es.Event) error // when set, may fail an event
	active     atomic.Int32           // consumers inside Handle right now
	maxActive  atomic.Int32
}

func (l *ledger) Checkpoint(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkpoint, nil
}

func (l *ledger) Handle(_ context.Context, batch []es.Event) error {
	n := l.active.Add(1)
	defer l.active.Add(-1)
	for {
		m := l.maxActive.Load()
		if n <= m || l.maxActive.CompareAndSwap(m, n) {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range batch {
		if l.failOn != nil {
			if err := l.failOn(e); err != nil {
				return err // nothing of this batch is kept
			}
		}
	}
	l.seen = append(l.seen, batch...)
	l.checkpoint = batch[len(batch)-1].Position
	return nil
}

func (l *ledger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

func (l *ledger) check(t *testing.T, want int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.seen) != want {
		t.Fatalf("consumer saw %d events, want %d", len(l.seen), want)
	}
	for i, e := range l.seen {
		if i > 0 && e.Position <= l.seen[i-1].Position {
			t.Fatalf("position %d after %d: events out of order or twice", e.Position, l.seen[i-1].Position)
		}
	}
}

func appendN(t *testing.T, s es.Store, stream string, n int) {
	t.Helper()
	for i := range n {
		_, err := es.Append(context.Background(), s, stream, es.AnyVersion,
			es.EventData{ID: es.NewID(), Type: "Tick", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, i)})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func run(ctx context.Context, sub *es.Subscription) <-chan error {
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	return done
}

func TestSubscriptionCatchesUpThenFollows(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 1000)
	l := &ledger{}
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx, es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 100, PollInterval: time.Hour}))
	waitFor(t, "catch-up", func() bool { return l.count() == 1000 })
	appendN(t, store, "clock-2", 50) // heard through es.Notifier: the poll interval is an hour
	waitFor(t, "live events", func() bool { return l.count() == 1050 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	l.check(t, 1050)
}

func TestSubscriptionResumesFromItsCheckpoint(t *testing.T) {
	store := memory.New(memory.Config{})
	l := &ledger{}
	appendN(t, store, "clock-1", 30)
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx, es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 7}))
	waitFor(t, "catch-up", func() bool { return l.count() == 30 })
	cancel()
	<-done
	appendN(t, store, "clock-1", 20)
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	run(ctx, es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 7}))
	waitFor(t, "resume", func() bool { return l.count() == 50 })
	l.check(t, 50)
}

func TestSubscriptionFilters(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "order-1", 3)
	appendN(t, store, "cart-1", 5)
	appendN(t, store, "order-2", 2)
	l := &ledger{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(ctx, es.NewSubscription("orders", store, l, es.SubscriptionConfig{Categories: []string{"order"}}))
	waitFor(t, "orders", func() bool { return l.count() == 5 })
	for _, e := range l.seen {
		if es.Category(e.StreamID) != "order" {
			t.Fatalf("got an event of stream %s", e.StreamID)
		}
	}
}

func TestSubscriptionRetriesATransientFailure(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 20)
	var failures atomic.Int32
	l := &ledger{failOn: func(e es.Event) error {
		if e.Version == 13 && failures.Add(1) <= 2 {
			return errors.New("database restarting")
		}
		return nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(ctx, es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 5, MaxAttempts: 5, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond}))
	waitFor(t, "all events", func() bool { return l.count() == 20 })
	l.check(t, 20)
}

func TestSubscriptionStopsAtAnEventThatKeepsFailing(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 20)
	poison := errors.New("cannot apply")
	l := &ledger{failOn: func(e es.Event) error {
		if e.Version == 13 {
			return poison
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	m, _ := esprom.NewSubscriptionMetrics(reg)
	sub := es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 5, MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Observer: m})
	err := sub.Run(context.Background())
	var herr *es.HandlerError
	if !errors.As(err, &herr) || !errors.Is(err, poison) {
		t.Fatalf("Run = %v, want a HandlerError wrapping the handler's error", err)
	}
	if herr.Event.Version != 13 || herr.Attempts != 3 || herr.Subscription != "ticks" {
		t.Fatalf("HandlerError = %+v, want event 13 after 3 attempts", herr)
	}
	// Everything before the poison event was handled; nothing after it.
	l.check(t, 12)
	if got := testutil.ToFloat64(m.Errors("ticks")); got != 4 { // the batch once, then the event 3 times
		t.Fatalf("handler errors = %v, want 4", got)
	}
}

func TestExclusiveSubscriptionFailsOver(t *testing.T) {
	store := memory.New(memory.Config{})
	locker := memory.NewLocker()
	l := &ledger{}
	appendN(t, store, "clock-1", 100)
	ctx1, kill1 := context.WithCancel(context.Background())
	ctx2, kill2 := context.WithCancel(context.Background())
	defer kill2()
	cfg := es.SubscriptionConfig{Locker: locker, BatchSize: 10, PollInterval: 5 * time.Millisecond}
	done1 := run(ctx1, es.NewSubscription("ticks", store, l, cfg))
	waitFor(t, "first instance", func() bool { return l.count() == 100 })
	run(ctx2, es.NewSubscription("ticks", store, l, cfg))
	appendN(t, store, "clock-1", 100)
	waitFor(t, "more events", func() bool { return l.count() == 200 })

	kill1() // the active instance dies; the other takes over
	<-done1
	appendN(t, store, "clock-1", 100)
	waitFor(t, "the standby to take over", func() bool { return l.count() == 300 })
	l.check(t, 300)
	if n := l.maxActive.Load(); n != 1 {
		t.Fatalf("%d consumers were active at once, want 1", n)
	}
}

func TestSubscriptionMetrics(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 40)
	reg := prometheus.NewRegistry()
	m, err := esprom.NewSubscriptionMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	l := &ledger{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(ctx, es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 10, Observer: m}))
	waitFor(t, "catch-up", func() bool { return testutil.ToFloat64(m.Position("ticks")) == 40 })
	if got := testutil.ToFloat64(m.Events("ticks")); got != 40 {
		t.Fatalf("events = %v, want 40", got)
	}
	if got := testutil.ToFloat64(m.Lag("ticks")); got != 0 {
		t.Fatalf("lag = %v, want 0", got)
	}
	if n, err := testutil.GatherAndCount(reg, "es_subscription_handle_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("duration series = %d, %v", n, err)
	}
}

func TestFilteredSubscriptionHasNoLagOnceCaughtUp(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "order-1", 5)
	appendN(t, store, "cart-1", 50) // after the last order event: not for this subscription
	reg := prometheus.NewRegistry()
	m, _ := esprom.NewSubscriptionMetrics(reg)
	l := &ledger{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(ctx, es.NewSubscription("orders", store, l, es.SubscriptionConfig{Categories: []string{"order"}, Observer: m}))
	waitFor(t, "catch-up", func() bool { return testutil.ToFloat64(m.Position("orders")) == 5 })
	if got := testutil.ToFloat64(m.Lag("orders")); got != 0 {
		t.Fatalf("lag = %v for a caught-up filtered subscription, want 0", got)
	}
}

func TestWaitForReturnsOnceTheSubscriptionHandledAPosition(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 30)
	l := &ledger{}
	sub := es.NewSubscription("ticks", store, l, es.SubscriptionConfig{BatchSize: 7, PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	run(ctx, sub)
	if err := sub.WaitCaughtUp(ctx); err != nil {
		t.Fatal(err)
	}
	if n := l.count(); n != 30 {
		t.Fatalf("caught up with %d events handled, want 30", n)
	}
	res, err := es.Append(ctx, store, "clock-1", es.AnyVersion, es.EventData{ID: es.NewID(), Type: "Tick", SchemaVersion: 1, Data: []byte(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	// The store notifies the subscription: no poll is needed.
	if err := sub.WaitFor(ctx, res.Position); err != nil {
		t.Fatal(err)
	}
	if n := l.count(); n != 31 {
		t.Fatalf("%d events handled after WaitFor, want 31", n)
	}
	short, stop := context.WithTimeout(ctx, 20*time.Millisecond)
	defer stop()
	if err := sub.WaitFor(short, res.Position+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a position not yet stored: %v", err)
	}
}

func TestWaitCaughtUpPassesOverFilteredEvents(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "order-1", 5)
	appendN(t, store, "cart-1", 50) // not for this subscription
	l := &ledger{}
	sub := es.NewSubscription("orders", store, l, es.SubscriptionConfig{Categories: []string{"order"}, PollInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run(ctx, sub)
	if err := sub.WaitCaughtUp(ctx); err != nil {
		t.Fatalf("a subscription whose last events are filtered out never caught up: %v", err)
	}
	if n := l.count(); n != 5 {
		t.Fatalf("%d events handled, want 5", n)
	}
}

func TestInvalidSubscriptionConfigStopsRun(t *testing.T) {
	sub := es.NewSubscription("x", memory.New(memory.Config{}), &ledger{}, es.SubscriptionConfig{BatchSize: -1})
	if err := sub.Run(context.Background()); !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("Run = %v, want ErrInvalidConfig", err)
	}
}

// TestSubscriptionRefusesMinBackoffAboveMaxBackoff: a floor above the
// ceiling cannot both hold; Run says so rather than pick one.
func TestSubscriptionRefusesMinBackoffAboveMaxBackoff(t *testing.T) {
	for _, cfg := range []es.SubscriptionConfig{
		{MinBackoff: 2 * time.Second, MaxBackoff: time.Second},
		{MinBackoff: time.Millisecond + 1, MaxBackoff: time.Millisecond},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := es.NewSubscription("x", memory.New(memory.Config{}), &ledger{}, cfg).Run(ctx)
		cancel()
		if !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("Run with MinBackoff %v, MaxBackoff %v = %v, want ErrInvalidConfig", cfg.MinBackoff, cfg.MaxBackoff, err)
		}
	}
}

// stallingConsumer fails every batch until the subscription is stopped.
type stallingConsumer struct {
	ledger
	failing chan struct{} // closed at the first failure
	once    sync.Once
}

func (c *stallingConsumer) Handle(ctx context.Context, batch []es.Event) error {
	c.once.Do(func() { close(c.failing) })
	return errors.New("read model unavailable")
}

func TestWaitForIgnoresABatchCutShortByTheStop(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 5)
	c := &stallingConsumer{failing: make(chan struct{})}
	sub := es.NewSubscription("ticks", store, c, es.SubscriptionConfig{MinBackoff: time.Hour, MaxBackoff: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx, sub)
	<-c.failing
	cancel() // stops the subscription in the middle of its retries
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if err := sub.WaitFor(short, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitFor = %v for events never handled, want the deadline", err)
	}
}

// failsOn fails on one event until stopped, recording what it was given.
type failsOn struct {
	ledger
	bad     int64
	failing chan struct{}
	once    sync.Once
}

func (c *failsOn) Handle(ctx context.Context, batch []es.Event) error {
	for _, e := range batch {
		if e.Position == c.bad {
			c.once.Do(func() { close(c.failing) })
			return errors.New("cannot handle it")
		}
	}
	return c.ledger.Handle(ctx, batch)
}

func TestStoppedDuringRetriesHandsNothingPastTheFailingEvent(t *testing.T) {
	store := memory.New(memory.Config{})
	appendN(t, store, "clock-1", 5)
	c := &failsOn{bad: 2, failing: make(chan struct{})}
	sub := es.NewSubscription("ticks", store, c, es.SubscriptionConfig{MaxAttempts: 1000, MinBackoff: 20 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := run(ctx, sub)
	<-c.failing
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.seen {
		if e.Position >= c.bad {
			t.Fatalf("the consumer was given position %d, past the event at %d that never succeeded", e.Position, c.bad)
		}
	}
}
