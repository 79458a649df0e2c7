package es_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
)

func newPayments(t *testing.T) (*memory.Store, *es.Registry, *estest.FakeClock, *es.ProcessHandler[Payment, PaymentEvent]) {
	t.Helper()
	store := memory.New(memory.Config{})
	reg := paymentRegistry()
	clock := estest.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	return store, reg, clock, es.NewProcessHandler(store, reg, paymentProcess, es.ProcessConfig{Clock: clock})
}

func msg(t *testing.T, reg *es.Registry, v any) es.Message {
	t.Helper()
	m, err := es.NewMessage(reg, "", v)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestProcessSendsCommandsAndSchedulesItsDeadline(t *testing.T) {
	store, reg, clock, h := newPayments(t)
	ctx := context.Background()
	placed := msg(t, reg, OrderPlaced{OrderID: "o-1", Amount: 4200})
	if err := h.Handle(ctx, placed); err != nil {
		t.Fatal(err)
	}
	if got := due(store, clock.Now()); !slices.Equal(got, []string{"finance.RequestPayment"}) {
		t.Fatalf("due now: %v", got)
	}
	if got := due(store, clock.Now().Add(paymentWindow)); !slices.Equal(got, []string{"finance.RequestPayment", "payment.TimedOut"}) {
		t.Fatalf("due after the payment window: %v", got)
	}
	state, _ := h.State(ctx, "o-1")
	if state.Status != "awaiting" {
		t.Fatalf("state = %+v", state)
	}
	// Correlation and causation flow from the handled message.
	msgs, _ := store.Due(ctx, clock.Now(), allBuckets(), 10)
	if md := msgs[0].Metadata; md.CausationID != placed.ID || md.CorrelationID != placed.ID || msgs[0].Key != "o-1" {
		t.Fatalf("sent message metadata = %+v, key %q", md, msgs[0].Key)
	}
}

func TestProcessIgnoresARedeliveredMessage(t *testing.T) {
	store, reg, clock, h := newPayments(t)
	ctx := context.Background()
	placed := msg(t, reg, OrderPlaced{OrderID: "o-1", Amount: 4200})
	paid := msg(t, reg, PaymentReceived{OrderID: "o-1"})
	for _, m := range []es.Message{placed, placed, paid, placed, paid} {
		if err := h.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := es.Collect(store.ReadStream(ctx, "payment-o-1", es.StreamQuery{}))
	if got := types(evs); !slices.Equal(got, []string{"PaymentAwaited", "PaymentSettled", es.DeadlinesCancelledType}) {
		t.Fatalf("process stream holds %v", got)
	}
	// The deadline was cancelled: after the window only the two commands remain.
	if got := due(store, clock.Now().Add(time.Hour)); !slices.Equal(got, []string{"finance.RequestPayment", "shipping.ShipOrder"}) {
		t.Fatalf("due: %v", got)
	}
}

func TestProcessHandlesConcurrentDuplicatesOnce(t *testing.T) {
	store, reg, clock, h := newPayments(t)
	placed := msg(t, reg, OrderPlaced{OrderID: "o-1", Amount: 100})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if err := h.Handle(context.Background(), placed); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := due(store, clock.Now().Add(time.Hour)); len(got) != 2 {
		t.Fatalf("due: %v, want one payment request and one deadline", got)
	}
}

// TestProcessRunsThroughRelayAndBus wires the whole loop: messages go
// through the outbox and the relay to the process, whose commands and
// deadline go back into the outbox.
func TestProcessRunsThroughRelayAndBus(t *testing.T) {
	store, reg, clock, h := newPayments(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus := es.NewBus()
	var mu sync.Mutex
	var commands []any
	record := func(_ context.Context, m es.Message) error {
		v, err := es.DecodeMessage(reg, m)
		mu.Lock()
		defer mu.Unlock()
		commands = append(commands, v)
		return err
	}
	for _, typ := range []string{"orders.OrderPlaced", "finance.PaymentReceived", "payment.TimedOut"} {
		bus.Subscribe(typ, h.Handle)
	}
	for _, typ := range []string{"finance.RequestPayment", "shipping.ShipOrder", "orders.CancelOrder"} {
		bus.Subscribe(typ, record)
	}
	go es.NewRelay(store, bus, es.RelayConfig{Clock: clock, PollInterval: time.Millisecond, Workers: 4}).Run(ctx)

	enqueue(t, store, msg(t, reg, OrderPlaced{OrderID: "paid", Amount: 100}), msg(t, reg, OrderPlaced{OrderID: "late", Amount: 200}))
	has := func(v any) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return slices.Contains(commands, v) }
	}
	waitFor(t, "payment requests", has(RequestPayment{OrderID: "late", Amount: 200}))
	enqueue(t, store, msg(t, reg, PaymentReceived{OrderID: "paid"}))
	waitFor(t, "shipping", has(ShipOrder{OrderID: "paid"}))

	clock.Advance(paymentWindow)
	waitFor(t, "the cancellation", has(CancelOrder{OrderID: "late", Reason: "payment not received in time"}))
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(commands, any(CancelOrder{OrderID: "paid", Reason: "payment not received in time"})) {
		t.Fatal("the paid order's cancelled deadline fired")
	}
	if len(commands) != 4 {
		t.Fatalf("commands = %v, want 2 payment requests, 1 shipment, 1 cancellation", commands)
	}
}

func types(evs []es.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// A deadline the relay fetched before the process cancelled it is still
// delivered; the handler must drop it without a reaction.
func TestProcessDropsADeadlineItCancelledInFlight(t *testing.T) {
	store := memory.New(memory.Config{})
	reg := paymentRegistry()
	clock := estest.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	pm := paymentProcess
	var timeoutsReacted int
	react := pm.React
	pm.React = func(p Payment, m any, now time.Time) (es.Reaction[PaymentEvent], error) {
		if _, ok := m.(PaymentTimedOut); ok {
			timeoutsReacted++
		}
		return react(p, m, now)
	}
	h := es.NewProcessHandler(store, reg, pm, es.ProcessConfig{Clock: clock})
	ctx := context.Background()
	if err := h.Handle(ctx, msg(t, reg, OrderPlaced{OrderID: "o-1", Amount: 4200})); err != nil {
		t.Fatal(err)
	}
	// The window passes and a relay fetches the deadline ...
	clock.Advance(paymentWindow)
	var deadline es.Message
	for _, m := range dueMessages(t, store, clock.Now()) {
		if m.Type == "payment.TimedOut" {
			deadline = m.Message
		}
	}
	if deadline.ID == "" {
		t.Fatal("the deadline is not due")
	}
	// ... the payment arrives and cancels it, too late for the outbox ...
	if err := h.Handle(ctx, msg(t, reg, PaymentReceived{OrderID: "o-1"})); err != nil {
		t.Fatal(err)
	}
	// ... and the relay delivers it anyway.
	if err := h.Handle(ctx, deadline); err != nil {
		t.Fatal(err)
	}
	if timeoutsReacted != 0 {
		t.Fatalf("React saw the cancelled deadline %d times", timeoutsReacted)
	}
	if st, _ := h.State(ctx, "o-1"); st.Status != "paid" {
		t.Fatalf("state = %+v, want paid", st)
	}
}

// A deadline handled before the message that would cancel it wins; React
// learns it from the state.
func TestProcessDeadlineHandledBeforeItsCancellation(t *testing.T) {
	store, reg, clock, h := newPayments(t)
	ctx := context.Background()
	if err := h.Handle(ctx, msg(t, reg, OrderPlaced{OrderID: "o-1", Amount: 4200})); err != nil {
		t.Fatal(err)
	}
	clock.Advance(paymentWindow)
	for _, m := range dueMessages(t, store, clock.Now()) {
		if m.Type == "payment.TimedOut" {
			if err := h.Handle(ctx, m.Message); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := h.Handle(ctx, msg(t, reg, PaymentReceived{OrderID: "o-1"})); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.State(ctx, "o-1"); st.Status != "expired" {
		t.Fatalf("state = %+v, want expired", st)
	}
}

func dueMessages(t *testing.T, o es.Outbox, now time.Time) []es.OutboxMessage {
	t.Helper()
	msgs, err := o.Due(context.Background(), now, allBuckets(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}
