package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/natsjs"
)

// envChild is set in the child processes of the crash tests.
const envChild = "ES_NATSJS_CHILD"

// TestMain gives the package's Example a server of its own (NATS_URL),
// when the machine has nats-server; without one, the package's tests
// need a server at the default URL, or they are skipped as a whole.
func TestMain(m *testing.M) {
	if os.Getenv("NATS_URL") == "" && os.Getenv(envChild) == "" {
		if serverBinary() != "" {
			dir, err := os.MkdirTemp("", "natsjs-example-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			s, err := newServer(dir)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			os.Setenv("NATS_URL", s.URL())
			code := m.Run()
			s.kill()
			os.RemoveAll(dir)
			os.Exit(code)
		}
		if nc, err := nats.Connect(nats.DefaultURL); err == nil {
			nc.Close()
		} else if os.Getenv("ES_REQUIRE_NATS") == "1" {
			fmt.Fprintln(os.Stderr, "natsjs: no nats-server binary and no server at", nats.DefaultURL, "(ES_REQUIRE_NATS=1)")
			os.Exit(1)
		} else {
			fmt.Fprintln(os.Stderr, "natsjs: skipping: no nats-server binary and no server at", nats.DefaultURL)
			os.Exit(0)
		}
	}
	os.Exit(m.Run())
}

// quiet is a logger for tests that expect failures.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// note is message n of key.
func note(key string, n int) es.Message {
	return es.Message{ID: es.NewID(), Key: key, Type: "test.Note", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// handled collects what a handler saw.
type handled struct {
	mu   sync.Mutex
	msgs []es.Message
	n    map[string][]int // key -> the "n" of its messages, in handling order
	done chan struct{}
	want int
}

func newHandled(want int) *handled {
	return &handled{n: map[string][]int{}, done: make(chan struct{}), want: want}
}

func (h *handled) add(m es.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, m)
	var n int
	if _, err := fmt.Sscanf(string(m.Data), `{"n":%d}`, &n); err == nil {
		h.n[m.Key] = append(h.n[m.Key], n)
	}
	if len(h.msgs) == h.want {
		close(h.done)
	}
}

func (h *handled) wait(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-h.done:
	case <-ctx.Done():
		h.mu.Lock()
		defer h.mu.Unlock()
		t.Fatalf("%d of %d messages handled: %v", len(h.msgs), h.want, ctx.Err())
	}
}

// checkOrder checks that each key's messages were handled once each, in
// the order of n.
func (h *handled) checkOrder(t *testing.T) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, ns := range h.n {
		for i, n := range ns {
			if n != i {
				t.Fatalf("key %s: handled %v, want 0, 1, 2, …", key, ns)
			}
		}
	}
}

func TestARelayedMessageReachesTheHandlerWithAllItCarries(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	js := connect(t, srv.URL())
	store := memory.New(memory.Config{})
	pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sent := es.Message{ID: es.NewID(), Key: "order-7", Type: "orders.OrderPlaced", SchemaVersion: 3,
		Data: []byte(`{"order":"7","total":1250}`),
		Metadata: es.Metadata{CorrelationID: "c-1", CausationID: "cmd-1",
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Extra: map[string]string{"tenant": "pl"}}}
	if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{sent}}); err != nil {
		t.Fatal(err)
	}
	go func() { _ = es.NewRelay(store, pub, es.RelayConfig{PollInterval: 10 * time.Millisecond}).Run(ctx) }()
	h := newHandled(1)
	var md es.Metadata // what the handler's commands would carry
	sub := natsjs.NewSubscriber(js, "billing", store.Inbox(), func(ctx context.Context, m es.Message) error {
		md = es.MetadataFrom(ctx)
		h.add(m)
		return nil
	}, natsjs.SubscriberConfig{})
	go func() { _ = sub.Run(ctx) }()
	h.wait(t, ctx)
	if diff := cmp.Diff(sent, h.msgs[0]); diff != "" {
		t.Fatalf("handled message (-sent +handled):\n%s", diff)
	}
	want := es.Metadata{CorrelationID: "c-1", CausationID: sent.ID, TraceParent: sent.Metadata.TraceParent, Extra: sent.Metadata.Extra}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("the handler's context does not continue the message's correlation (-want +got):\n%s", diff)
	}
	if got, want := pub.Subject(sent), fmt.Sprintf("es.%d.orders.OrderPlaced", es.MessageBucket("order-7")); got != want {
		t.Errorf("subject %s, want %s", got, want)
	}
}

func TestAMessagePublishedTwiceIsStoredOnce(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	js := connect(t, srv.URL())
	pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m := note("k", 0)
	for range 3 {
		if err := pub.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Publish(ctx, note("k", 1)); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, natsjs.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Fatalf("the stream holds %d messages, want 2 (the first one published three times)", info.State.Msgs)
	}
}

// TestEachKeyKeepsItsOrderWhenHandlingsFail fails a third of the
// handlings at random: each failure is a nak and a redelivery, which
// JetStream would let overtake later messages without the one message in
// flight per bucket. Every message still takes effect once, in order.
func TestEachKeyKeepsItsOrderWhenHandlingsFail(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	js := connect(t, srv.URL())
	store := memory.New(memory.Config{})
	pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := relayNotes(ctx, t, store, pub, 12, 40)
	h := newHandled(len(msgs))
	var failures atomic.Int64
	sub := natsjs.NewSubscriber(js, "flaky", store.Inbox(), func(ctx context.Context, m es.Message) error {
		if rand.IntN(3) == 0 {
			failures.Add(1)
			return errors.New("flaky handler")
		}
		h.add(m)
		return nil
	}, natsjs.SubscriberConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet()})
	go func() { _ = sub.Run(ctx) }()
	h.wait(t, ctx)
	h.checkOrder(t)
	t.Logf("%d messages, %d failed handlings", len(msgs), failures.Load())
}

// TestTwoSubscribersOfOneNameShareTheWorkAndKeepTheOrder runs two
// subscribers of the same name on the same inbox (two processes of one
// module), with handlings that fail or take a while at random and an
// AckWait short enough for some messages to be redelivered while still
// being handled: every message takes effect once, in order per key.
func TestTwoSubscribersOfOneNameShareTheWorkAndKeepTheOrder(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	store := memory.New(memory.Config{})
	pub, err := natsjs.NewPublisher(ctx, connect(t, srv.URL()), natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msgs := relayNotes(ctx, t, store, pub, 8, 30)
	h := newHandled(len(msgs))
	var by [2]atomic.Int64
	for i := range 2 {
		js := connect(t, srv.URL()) // a connection each, as two processes would have
		sub := natsjs.NewSubscriber(js, "shared", store.Inbox(), func(ctx context.Context, m es.Message) error {
			switch rand.IntN(10) {
			case 0:
				return errors.New("flaky handler")
			case 1:
				time.Sleep(1500 * time.Millisecond) // beyond AckWait: redelivered meanwhile
			}
			by[i].Add(1)
			h.add(m)
			return nil
		}, natsjs.SubscriberConfig{AckWait: time.Second, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: quiet()})
		go func() { _ = sub.Run(ctx) }()
	}
	h.wait(t, ctx)
	h.checkOrder(t)
	t.Logf("%d messages: %d handled by one subscriber, %d by the other", len(msgs), by[0].Load(), by[1].Load())
}

func TestASubscriberHandsOnlyItsTypesToTheHandler(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	js := connect(t, srv.URL())
	store := memory.New(memory.Config{})
	pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	other := note("k", 0)
	other.Type = "test.Other"
	for _, m := range []es.Message{other, note("k", 0), other, note("k", 1)} {
		m.ID = es.NewID()
		if err := pub.Publish(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	h := newHandled(2)
	sub := natsjs.NewSubscriber(js, "notes", store.Inbox(), func(ctx context.Context, m es.Message) error {
		if m.Type != "test.Note" {
			t.Errorf("handler got a %s", m.Type)
		}
		h.add(m)
		return nil
	}, natsjs.SubscriberConfig{Types: []string{"test.Note"}})
	go func() { _ = sub.Run(ctx) }()
	h.wait(t, ctx)
	h.checkOrder(t)
}

func TestATypeThatCannotBeASubjectIsRefused(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	pub, err := natsjs.NewPublisher(ctx, connect(t, srv.URL()), natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"", "orders placed", "orders.*", "orders.>", "orders..Placed", ".Placed", "Placed."} {
		m := note("k", 0)
		m.Type = typ
		if err := pub.Publish(ctx, m); !errors.Is(err, natsjs.ErrInvalidType) {
			t.Errorf("type %q: got %v, want ErrInvalidType", typ, err)
		}
	}
}

func TestConfigurationsThatCannotWork(t *testing.T) {
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	js := connect(t, srv.URL())
	for name, cfg := range map[string]natsjs.PublisherConfig{
		"negative timeout":     {Timeout: -time.Second},
		"negative duplicates":  {Duplicates: -time.Second},
		"dotted stream":        {Stream: "a.b"},
		"wildcard subject":     {Subject: "es.*"},
		"empty subject token":  {Subject: "es..x"},
		"space in the subject": {Subject: "e s"},
	} {
		if _, err := natsjs.NewPublisher(ctx, js, cfg); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("publisher, %s: got %v, want ErrInvalidConfig", name, err)
		}
	}
	inbox := memory.New(memory.Config{}).Inbox()
	noop := func(context.Context, es.Message) error { return nil }
	for name, s := range map[string]*natsjs.Subscriber{
		"no name":          natsjs.NewSubscriber(js, "", inbox, noop, natsjs.SubscriberConfig{}),
		"dotted name":      natsjs.NewSubscriber(js, "a.b", inbox, noop, natsjs.SubscriberConfig{}),
		"no inbox":         natsjs.NewSubscriber(js, "a", nil, noop, natsjs.SubscriberConfig{}),
		"no handler":       natsjs.NewSubscriber(js, "a", inbox, nil, natsjs.SubscriberConfig{}),
		"negative AckWait": natsjs.NewSubscriber(js, "a", inbox, noop, natsjs.SubscriberConfig{AckWait: -1}),
		"backoff bounds": natsjs.NewSubscriber(js, "a", inbox, noop,
			natsjs.SubscriberConfig{MinBackoff: time.Second, MaxBackoff: time.Millisecond}),
	} {
		if err := s.Run(ctx); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("subscriber, %s: got %v, want ErrInvalidConfig", name, err)
		}
	}
}

// relayNotes enqueues perKey notes for each of keys keys, interleaved, and
// runs a relay with 4 workers from store to pub until ctx ends.
func relayNotes(ctx context.Context, t *testing.T, store *memory.Store, pub *natsjs.Publisher, keys, perKey int) []es.Message {
	t.Helper()
	var msgs []es.Message
	for n := range perKey {
		for k := range keys {
			msgs = append(msgs, note(fmt.Sprintf("key-%d", k), n))
		}
	}
	if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = es.NewRelay(store, pub, es.RelayConfig{Workers: 4, PollInterval: 10 * time.Millisecond}).Run(ctx)
	}()
	return msgs
}
