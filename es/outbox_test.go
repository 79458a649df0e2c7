package es_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"esgo.dev/es"
	"esgo.dev/es/esprom"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
)

func message(key string, n int) es.Message {
	return es.Message{ID: es.NewID(), Key: key, Type: "Numbered", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

func enqueue(t *testing.T, o es.Outbox, msgs ...es.Message) {
	t.Helper()
	if _, err := o.AppendEnqueue(context.Background(), es.Enqueue{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
}

// recorder is a Publisher that fails at random and records, per key, the
// order of successful deliveries.
type deliveries struct {
	mu       sync.Mutex
	byKey    map[string][]string
	ids      map[string]int
	failRate float64
}

func (d *deliveries) Publish(_ context.Context, m es.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rand.Float64() < d.failRate {
		return errors.New("broker unavailable")
	}
	d.byKey[m.Key] = append(d.byKey[m.Key], m.ID)
	d.ids[m.ID]++
	return nil
}

func (d *deliveries) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ids)
}

func TestRelayDeliversInOrderPerKeyWithFourWorkers(t *testing.T) {
	store := memory.New(memory.Config{})
	written := map[string][]string{}
	for i := range 600 {
		key := fmt.Sprintf("order-%d", i%23)
		m := message(key, i)
		written[key] = append(written[key], m.ID)
		enqueue(t, store, m)
	}
	d := &deliveries{byKey: map[string][]string{}, ids: map[string]int{}, failRate: 0.2}
	reg := prometheus.NewRegistry()
	metrics, _ := esprom.NewRelayMetrics(reg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- es.NewRelay(store, d, es.RelayConfig{Workers: 4, PollInterval: time.Millisecond, MaxAttempts: 1000, MinBackoff: time.Microsecond, MaxBackoff: time.Millisecond, Observer: metrics}).Run(ctx)
	}()
	waitFor(t, "all deliveries", func() bool { return d.count() == 600 })
	cancel()
	<-done
	for key, ids := range written {
		if !slices.Equal(d.byKey[key], ids) {
			t.Fatalf("key %s: delivered %d messages out of the written order", key, len(d.byKey[key]))
		}
	}
	for id, n := range d.ids {
		if n != 1 {
			t.Fatalf("message %s delivered %d times", id, n)
		}
	}
	if n, _ := store.Backlog(context.Background()); n != 0 {
		t.Fatalf("backlog = %d after delivering everything", n)
	}
	if testutil.ToFloat64(metrics.Deliveries("error")) == 0 || testutil.ToFloat64(metrics.Deliveries("ok")) != 600 {
		t.Fatalf("deliveries ok=%v error=%v", testutil.ToFloat64(metrics.Deliveries("ok")), testutil.ToFloat64(metrics.Deliveries("error")))
	}
}

func TestRelayParksAMessageThatKeepsFailingAndHoldsBackItsKey(t *testing.T) {
	store := memory.New(memory.Config{})
	poison := message("order-1", 1)
	after := message("order-1", 2)
	other := message("order-2", 3)
	enqueue(t, store, poison, after, other)
	var mu sync.Mutex
	var got []string
	pub := es.PublisherFunc(func(_ context.Context, m es.Message) error {
		if m.ID == poison.ID {
			return errors.New("rejected")
		}
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.ID)
		return nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go es.NewRelay(store, pub, es.RelayConfig{PollInterval: time.Millisecond, MaxAttempts: 3, MinBackoff: time.Microsecond, MaxBackoff: time.Microsecond}).Run(ctx)
	waitFor(t, "the other key", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	time.Sleep(50 * time.Millisecond) // the poison message is retried, then parked
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, []string{other.ID}) {
		t.Fatalf("delivered %v: only order-2's message may pass; order-1's second must wait behind the parked first", got)
	}
	if n, _ := store.Backlog(ctx); n != 2 {
		t.Fatalf("backlog = %d, want the parked message and the one behind it", n)
	}
}

func TestDeadlinesFireWhenDueAndNotWhenCancelled(t *testing.T) {
	store := memory.New(memory.Config{})
	clock := estest.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	soon, later, cancelled := message("a", 1), message("b", 2), message("c", 3)
	soon.DeliverAt = clock.Now().Add(time.Minute)
	later.DeliverAt = clock.Now().Add(time.Hour)
	cancelled.DeliverAt = clock.Now().Add(time.Minute)
	enqueue(t, store, soon, later, cancelled)
	if _, err := store.AppendEnqueue(context.Background(), es.Enqueue{Cancel: []string{cancelled.ID}}); err != nil {
		t.Fatal(err)
	}
	if d := due(store, clock.Now()); len(d) != 0 {
		t.Fatalf("due before their time: %v", d)
	}
	ids := func(now time.Time) []string {
		msgs, _ := store.Due(context.Background(), now, allBuckets(), 10)
		var out []string
		for _, m := range msgs {
			out = append(out, m.ID)
		}
		return out
	}
	if got := ids(clock.Advance(time.Minute)); !slices.Equal(got, []string{soon.ID}) {
		t.Fatalf("due after a minute: %v, want only the first deadline", got)
	}
	if got := ids(clock.Advance(time.Hour)); !slices.Equal(got, []string{soon.ID, later.ID}) {
		t.Fatalf("due after an hour: %v", got)
	}
}

func TestEnqueueIsIdempotentByMessageIDAndValidated(t *testing.T) {
	store := memory.New(memory.Config{})
	m := message("k", 1)
	enqueue(t, store, m)
	enqueue(t, store, m)
	if n, _ := store.Backlog(context.Background()); n != 1 {
		t.Fatalf("backlog = %d after enqueuing one message twice", n)
	}
	bad := message("k", 2)
	bad.Data = []byte(`[1]`)
	if _, err := store.AppendEnqueue(context.Background(), es.Enqueue{Messages: []es.Message{bad}}); !errors.Is(err, es.ErrInvalidAppend) {
		t.Fatalf("got %v, want ErrInvalidAppend", err)
	}
}

func TestInboxHandlesEachMessageOnce(t *testing.T) {
	inbox := memory.New(memory.Config{}).Inbox()
	var mu sync.Mutex
	effects := 0
	id := es.NewID()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			fail := i == 0
			_, err := inbox.Handle(context.Background(), "mailer", id, func(context.Context) error {
				if fail {
					return errors.New("smtp down")
				}
				mu.Lock()
				effects++
				mu.Unlock()
				return nil
			})
			if err != nil && !fail {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if effects != 1 {
		t.Fatalf("%d effects, want 1", effects)
	}
}

func TestBusDeliversToEverySubscriber(t *testing.T) {
	bus := es.NewBus()
	var got []string
	bus.Subscribe("Numbered", func(_ context.Context, m es.Message) error { got = append(got, "a"); return nil })
	bus.Subscribe("Numbered", func(_ context.Context, m es.Message) error { return errors.New("b failed") })
	err := bus.Publish(context.Background(), message("k", 1))
	if err == nil || !slices.Equal(got, []string{"a"}) {
		t.Fatalf("Publish = %v, handlers ran %v", err, got)
	}
	if err := bus.Publish(context.Background(), es.Message{Type: "Unwatched"}); err != nil {
		t.Fatalf("a message without subscribers: %v", err)
	}
}

func TestBusHandlersContinueTheMessagesCorrelation(t *testing.T) {
	bus := es.NewBus()
	var got es.Metadata
	bus.Subscribe("Numbered", func(ctx context.Context, m es.Message) error { got = es.MetadataFrom(ctx); return nil })
	m := message("k", 1)
	m.Metadata = es.Metadata{CorrelationID: "purchase-1", CausationID: "checkout-1", TraceParent: "00-trace", Extra: map[string]string{"who": "me"}}
	if err := bus.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want := es.Metadata{CorrelationID: "purchase-1", CausationID: m.ID, TraceParent: "00-trace", Extra: map[string]string{"who": "me"}}
	if got.CorrelationID != want.CorrelationID || got.CausationID != want.CausationID || got.TraceParent != want.TraceParent || got.Extra["who"] != "me" {
		t.Fatalf("handler's metadata = %+v, want %+v", got, want)
	}
	m = message("k", 2) // without a correlation, the message starts one
	if err := bus.Publish(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got.CorrelationID != m.ID || got.CausationID != m.ID {
		t.Fatalf("handler's metadata = %+v, want correlation and causation %s", got, m.ID)
	}
}

// brokenOutbox is an outbox whose Due keeps failing, as a database that is
// down would.
type brokenOutbox struct {
	es.Outbox
	calls int
}

func (b *brokenOutbox) Due(context.Context, time.Time, []int, int) ([]es.OutboxMessage, error) {
	b.calls++
	return nil, errors.New("connection refused")
}

func TestRelayStopsWhenTheOutboxOutlastsItsRetries(t *testing.T) {
	ob := &brokenOutbox{Outbox: memory.New(memory.Config{})}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := es.NewRelay(ob, es.NewBus(), es.RelayConfig{MaxOutageRetries: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}).Run(ctx)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Run = %v, want the outbox's error before the deadline", err)
	}
	if ob.calls != 4 {
		t.Fatalf("Due called %d times, want 1 + 3 retries", ob.calls)
	}
}

// lockOnly is a Locker that is not an es.TryLocker.
type lockOnly struct{ *memory.Locker }

func (l lockOnly) TryLock() {} // hides memory.Locker's

func TestRelayRunRefusesAnInvalidConfig(t *testing.T) {
	for _, cfg := range []es.RelayConfig{{Workers: -1}, {Workers: es.OutboxBuckets + 1}, {MaxOutageRetries: -2},
		{RebalanceInterval: -time.Second, Locker: memory.NewLocker()},
		// Without a Locker that can share, there is nothing to rebalance:
		// a relay configured so would not share, whatever its author meant.
		{RebalanceInterval: time.Second},
		{RebalanceInterval: time.Second, Locker: lockOnly{memory.NewLocker()}},
	} {
		if err := es.NewRelay(memory.New(memory.Config{}), es.NewBus(), cfg).Run(context.Background()); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("Run with %+v = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// TestRelayRefusesMinBackoffAboveMaxBackoff: a floor above the ceiling
// cannot both hold; Run says so rather than pick one.
func TestRelayRefusesMinBackoffAboveMaxBackoff(t *testing.T) {
	for _, cfg := range []es.RelayConfig{
		{MinBackoff: 2 * time.Minute, MaxBackoff: time.Minute},
		{MinBackoff: time.Millisecond + 1, MaxBackoff: time.Millisecond},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := es.NewRelay(memory.New(memory.Config{}), es.NewBus(), cfg).Run(ctx)
		cancel()
		if !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("Run with MinBackoff %v, MaxBackoff %v = %v, want ErrInvalidConfig", cfg.MinBackoff, cfg.MaxBackoff, err)
		}
	}
}

func TestRelayReturnsNilWhenStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- es.NewRelay(memory.New(memory.Config{}), es.NewBus(), es.RelayConfig{Workers: 3}).Run(ctx)
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after its context ended, want nil", err)
	}
}
