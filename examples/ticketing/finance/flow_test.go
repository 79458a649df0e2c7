package finance_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/finance"
)

// rig runs the module as the application does: messages enqueued in the
// outbox, delivered by a relay to a bus the module subscribes to. It
// records the outcome messages finance sends to the orders process.
type rig struct {
	store es.Outbox
	reg   *es.Registry
	clock *estest.FakeClock
	gw    *finance.FakeGateway
	mod   *finance.Module

	mu  sync.Mutex
	out []any // PaymentSucceeded, PaymentFailed, PaymentRefunded, in order
}

type rigOption func(*rigConfig)

type rigConfig struct {
	store   func(es.Outbox) es.Outbox
	gateway finance.Gateway
}

func withStore(wrap func(es.Outbox) es.Outbox) rigOption {
	return func(c *rigConfig) { c.store = wrap }
}

func withGateway(g finance.Gateway) rigOption { return func(c *rigConfig) { c.gateway = g } }

// newRig starts a rig whose relay and module run on a fake clock: a
// failed delivery is retried once the test moves the clock past its
// backoff, and deadlines fire when the clock reaches them.
func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	var cfg rigConfig
	for _, o := range opts {
		o(&cfg)
	}
	var store es.Outbox = memory.New(memory.Config{})
	if cfg.store != nil {
		store = cfg.store(store)
	}
	r := &rig{store: store, reg: registry(t), clock: estest.NewFakeClock(t0), gw: finance.NewFakeGateway()}
	if cfg.gateway == nil {
		cfg.gateway = r.gw
	}
	var err error
	r.mod, err = finance.New(finance.Config{Store: store, Registry: r.reg, Gateway: cfg.gateway, Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	bus := es.NewBus()
	r.mod.Subscribe(bus)
	for _, typ := range []string{"finance.PaymentSucceeded", "finance.PaymentFailed", "finance.PaymentRefunded"} {
		bus.Subscribe(typ, func(_ context.Context, m es.Message) error {
			v, err := es.DecodeMessage(r.reg, m)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.out = append(r.out, v)
			return err
		})
	}
	relay := es.NewRelay(store, bus, es.RelayConfig{Clock: r.clock, PollInterval: time.Millisecond,
		MinBackoff: time.Second, MaxBackoff: time.Minute, MaxAttempts: 1000})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay: %v", err)
		}
	})
	return r
}

// send enqueues a message for finance, as the orders process does.
func (r *rig) send(t *testing.T, key string, v any) {
	t.Helper()
	m, err := es.NewMessage(r.reg, key, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.AppendEnqueue(context.Background(), es.Enqueue{Messages: []es.Message{m}}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) outcomes() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.out...)
}

// waitFor waits until cond holds, failing the test after 20 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// settled waits until the outbox is empty.
func (r *rig) settled(t *testing.T) {
	t.Helper()
	waitFor(t, "an empty outbox", func() bool {
		n, err := r.store.Backlog(context.Background())
		// The payment's deadline stays scheduled until its time.
		return err == nil && n <= 1
	})
}

func (r *rig) payment(t *testing.T, orderID string) finance.Payment {
	t.Helper()
	p, err := r.mod.Payment(context.Background(), orderID)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (r *rig) invoice(t *testing.T, orderID string) finance.Invoice {
	t.Helper()
	inv, _, err := es.NewCommandHandler(r.store, r.reg, finance.InvoiceDecider(), es.HandlerConfig{}).Load(context.Background(), finance.InvoiceStream(orderID))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func TestARequestedPaymentIsChargedOnceAndInvoiced(t *testing.T) {
	r := newRig(t)
	r.send(t, "p1", request())
	r.send(t, "p1", request()) // a second request for the same payment
	waitFor(t, "the invoice", func() bool { return r.invoice(t, "o1").HasIssued })
	r.settled(t)
	if p := r.payment(t, "o1"); p.Status != finance.Succeeded || p.GatewayID != "fake_pi_p1" {
		t.Errorf("payment %+v; want succeeded", p)
	}
	if n := r.gw.Captured(); n != 1 {
		t.Errorf("%d charges captured, want 1", n)
	}
	if got := r.outcomes(); len(got) != 1 || got[0] != (finance.PaymentSucceeded{PaymentID: "p1", OrderID: "o1", Amount: pln(50000)}) {
		t.Errorf("outcomes %+v; want one PaymentSucceeded", got)
	}
	if inv := r.invoice(t, "o1"); inv.Issued.Number != "live/2026/000001" || inv.Issued.Total != pln(50000) {
		t.Errorf("invoice %+v", inv.Issued)
	}
}

func TestADeclinedCardFailsThePaymentWithItsReason(t *testing.T) {
	r := newRig(t)
	r.gw.DeclineUser("ola", "insufficient_funds")
	r.send(t, "p1", request())
	waitFor(t, "the outcome", func() bool { return len(r.outcomes()) == 1 })
	if got := r.outcomes()[0]; got != (finance.PaymentFailed{PaymentID: "p1", OrderID: "o1", Reason: "your card was declined"}) {
		t.Errorf("outcome %+v", got)
	}
	if p := r.payment(t, "o1"); p.Status != finance.Failed {
		t.Errorf("payment %+v; want failed", p)
	}
	r.settled(t)
	if r.invoice(t, "o1").HasIssued {
		t.Error("a failed payment was invoiced")
	}
}

func TestAnInvalidRequestIsAnsweredAndChangesNothing(t *testing.T) {
	r := newRig(t)
	bad := request()
	bad.Amount = pln(1)
	r.send(t, "p1", bad)
	waitFor(t, "the outcome", func() bool { return len(r.outcomes()) == 1 })
	if f, ok := r.outcomes()[0].(finance.PaymentFailed); !ok || f.PaymentID != "p1" {
		t.Errorf("outcome %+v; want PaymentFailed", r.outcomes()[0])
	}
	if p := r.payment(t, "o1"); p.Status != "" {
		t.Errorf("payment %+v; want none", p)
	}
	if r.gw.Calls() != 0 {
		t.Error("the gateway was called")
	}
}

func TestTransientGatewayFailuresAreRetriedWithBackoff(t *testing.T) {
	r := newRig(t)
	r.gw.FailNext(3)
	r.send(t, "p1", request())
	for calls := 1; calls <= 3; calls++ {
		// Each failed call is retried only once the backoff has passed.
		waitFor(t, "a call to the gateway", func() bool { return r.gw.Calls() == calls })
		if p := r.payment(t, "o1"); p.Status != finance.Pending {
			t.Fatalf("after %d failed calls the payment is %s, want pending", calls, p.Status)
		}
		r.clock.Advance(time.Minute)
	}
	waitFor(t, "the outcome", func() bool { return len(r.outcomes()) == 1 })
	if _, ok := r.outcomes()[0].(finance.PaymentSucceeded); !ok || r.gw.Captured() != 1 {
		t.Errorf("outcome %+v, %d captured; want one success", r.outcomes()[0], r.gw.Captured())
	}
}

func TestAGatewayThatStaysDownFailsThePaymentAtItsDeadline(t *testing.T) {
	r := newRig(t)
	r.gw.FailNext(1 << 30)
	r.send(t, "p1", request())
	waitFor(t, "a call to the gateway", func() bool { return r.gw.Calls() >= 1 })
	for range 14 {
		r.clock.Advance(time.Minute)
		if len(r.outcomes()) != 0 {
			t.Fatalf("an outcome before the deadline: %+v", r.outcomes())
		}
	}
	r.clock.Advance(2 * time.Minute)
	waitFor(t, "the outcome", func() bool { return len(r.outcomes()) == 1 })
	want := finance.PaymentFailed{PaymentID: "p1", OrderID: "o1", Reason: "the payment provider did not answer in time; nothing was charged"}
	if got := r.outcomes()[0]; got != want {
		t.Errorf("outcome %+v, want %+v", got, want)
	}
	p := r.payment(t, "o1")
	if p.Status != finance.Failed {
		t.Errorf("payment %+v; want failed", p)
	}
	// The request, still being retried, stops calling the gateway.
	calls := r.gw.Calls()
	r.clock.Advance(time.Hour)
	waitFor(t, "the request delivered", func() bool {
		n, _ := r.store.Backlog(context.Background())
		return n == 0
	})
	if r.gw.Calls() > calls+1 {
		t.Errorf("the gateway was called %d more times after the payment failed", r.gw.Calls()-calls)
	}
}

// crashingStore fails the appends that match once, like a process that
// dies after the gateway answered and before the outcome is stored.
type crashingStore struct {
	es.Outbox
	match   func([]es.StreamAppend) bool
	crashes atomic.Int32
}

var errCrash = errors.New("injected crash")

func (s *crashingStore) AppendEnqueue(ctx context.Context, enq es.Enqueue, a ...es.StreamAppend) ([]es.AppendResult, error) {
	if s.match(a) && s.crashes.Add(-1) >= 0 {
		return nil, errCrash
	}
	return s.Outbox.AppendEnqueue(ctx, enq, a...)
}

func appendsType(typ string) func([]es.StreamAppend) bool {
	return func(as []es.StreamAppend) bool {
		for _, a := range as {
			for _, e := range a.Events {
				if e.Type == typ {
					return true
				}
			}
		}
		return false
	}
}

func TestACrashBetweenTheChargeAndItsOutcomeNeitherChargesTwiceNorLosesThePayment(t *testing.T) {
	var crashing *crashingStore
	r := newRig(t, withStore(func(o es.Outbox) es.Outbox {
		crashing = &crashingStore{Outbox: o, match: appendsType("finance.PaymentCaptured")}
		crashing.crashes.Store(2)
		return crashing
	}))
	r.send(t, "p1", request())
	waitFor(t, "a crashed attempt", func() bool { return crashing.crashes.Load() == 1 })
	r.clock.Advance(time.Minute)
	waitFor(t, "a second crashed attempt", func() bool { return crashing.crashes.Load() <= 0 })
	r.clock.Advance(time.Minute)
	waitFor(t, "the outcome", func() bool { return len(r.outcomes()) == 1 })
	if calls, captured := r.gw.Calls(), r.gw.Captured(); calls != 3 || captured != 1 {
		t.Errorf("%d calls to the gateway, %d charges captured; want 3 calls with one key, 1 charge", calls, captured)
	}
	if p := r.payment(t, "o1"); p.Status != finance.Succeeded {
		t.Errorf("payment %+v; want succeeded", p)
	}
}

func TestRefundsAddUpAndBecomeCreditNotes(t *testing.T) {
	r := newRig(t)
	r.send(t, "p1", request())
	waitFor(t, "the invoice", func() bool { return r.invoice(t, "o1").HasIssued })
	r.send(t, "p1", finance.RefundPayment{PaymentID: "p1", RefundID: "r1", OrderID: "o1", Amount: pln(20000), Reason: "one seat"})
	r.send(t, "p1", finance.RefundPayment{PaymentID: "p1", RefundID: "r1", OrderID: "o1", Amount: pln(20000), Reason: "one seat"})
	r.send(t, "p1", finance.RefundPayment{PaymentID: "p1", RefundID: "r2", OrderID: "o1", Amount: pln(30001), Reason: "too much"})
	r.send(t, "p1", finance.RefundPayment{PaymentID: "p1", RefundID: "r3", OrderID: "o1", Amount: pln(30000), Reason: "the rest"})
	waitFor(t, "two credit notes", func() bool { return len(r.invoice(t, "o1").Credits) == 2 })
	r.settled(t)
	p := r.payment(t, "o1")
	if p.Status != finance.Refunded || p.Refunded != pln(50000) || p.Refunds["r2"] != nil {
		t.Errorf("payment %+v; want refunded 500.00 PLN by r1 and r3", p)
	}
	if got := r.outcomes(); len(got) != 3 {
		t.Errorf("outcomes %+v; want a success and two refunds", got)
	}
	inv := r.invoice(t, "o1")
	if inv.Credited != pln(50000) {
		t.Errorf("credited %s, want 500.00 PLN", inv.Credited)
	}
}

func TestALateCaptureIsGivenBack(t *testing.T) {
	r := newRig(t)
	r.gw.FailNext(1 << 30)
	r.send(t, "p1", request())
	waitFor(t, "a call to the gateway", func() bool { return r.gw.Calls() >= 1 })
	r.clock.Advance(16 * time.Minute)
	waitFor(t, "the failure", func() bool { return len(r.outcomes()) == 1 })
	// The gateway took the money after all, and says so by webhook.
	if err := r.mod.Record(context.Background(), "evt_late", "o1", finance.RecordCapture{GatewayID: "pi_late", Amount: pln(50000), At: r.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	r.gw.FailNext(0)
	r.clock.Advance(time.Hour)
	waitFor(t, "the reversal", func() bool { return r.payment(t, "o1").Reversed })
	if p := r.payment(t, "o1"); p.Status != finance.Failed {
		t.Errorf("payment %+v; want still failed", p)
	}
}
