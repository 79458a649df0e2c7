package es_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

func newCartHandler(s es.Store, cfg es.HandlerConfig) *es.CommandHandler[Cart, any, CartEvent] {
	return es.NewCommandHandler(s, cartRegistry(), cartDecider, cfg)
}

func TestHandlerAppendsWhatItDecides(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	h := newCartHandler(store, es.HandlerConfig{})
	res, err := h.Handle(ctx, "", "cart-1", AddItem{TicketType: "standing", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 1 || res.Repeated || res.State.Items["standing"] != 2 || len(res.Events) != 1 {
		t.Fatalf("result = %+v", res)
	}
	if _, err := h.Handle(ctx, "", "cart-1", Confirm{}); err != nil {
		t.Fatal(err)
	}
	state, version, err := h.Load(ctx, "cart-1")
	if err != nil || version != 2 || !state.Confirmed {
		t.Fatalf("Load = %+v, %d, %v", state, version, err)
	}
}

func TestHandlerReturnsBusinessErrorsAndAppendsNothing(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	h := newCartHandler(store, es.HandlerConfig{})
	if _, err := h.Handle(ctx, "", "cart-1", Confirm{}); !errors.Is(err, ErrEmptyCart) {
		t.Fatalf("got %v, want ErrEmptyCart", err)
	}
	if _, err := h.Handle(ctx, "", "cart-1", AddItem{TicketType: "vip", Quantity: 11}); !errors.Is(err, ErrInvalidQuantity) {
		t.Fatalf("got %v, want ErrInvalidQuantity", err)
	}
	if evs, _ := es.Collect(store.ReadAll(ctx, es.AllQuery{})); len(evs) != 0 {
		t.Fatalf("refused commands appended %d events", len(evs))
	}
}

func TestHandlerIsIdempotentByCommandID(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	h := newCartHandler(store, es.HandlerConfig{})
	id := es.NewID()
	first, err := h.Handle(ctx, id, "cart-1", AddItem{TicketType: "vip", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, "", "cart-1", AddItem{TicketType: "standing", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	again, err := h.Handle(ctx, id, "cart-1", AddItem{TicketType: "vip", Quantity: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Repeated || again.Version != first.Version || fmt.Sprint(again.Events) != fmt.Sprint(first.Events) {
		t.Fatalf("repeated command = %+v, want the first outcome %+v", again, first)
	}
	if again.State.Items["vip"] != 1 {
		t.Fatalf("a repeated command changed the state: %+v", again.State)
	}
	if evs, _ := es.Collect(store.ReadStream(ctx, "cart-1", es.StreamQuery{})); len(evs) != 2 {
		t.Fatalf("stream has %d events, want 2", len(evs))
	}
}

func TestHandlerIsIdempotentUnderConcurrentRetries(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	h := newCartHandler(store, es.HandlerConfig{})
	id := es.NewID()
	var wg sync.WaitGroup
	var fresh atomic.Int32
	for range 20 {
		wg.Go(func() {
			res, err := h.Handle(ctx, id, "cart-1", AddItem{TicketType: "vip", Quantity: 3})
			if err != nil {
				t.Error(err)
				return
			}
			if !res.Repeated {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d handlings appended, want 1", fresh.Load())
	}
	state, version, _ := h.Load(ctx, "cart-1")
	if version != 1 || state.Items["vip"] != 3 {
		t.Fatalf("state %+v at version %d, want 3 vip at version 1", state, version)
	}
}

func TestHandlerRetriesConcurrencyConflicts(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	h := newCartHandler(store, es.HandlerConfig{MaxAttempts: 100})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			if _, err := h.Handle(ctx, "", "cart-1", AddItem{TicketType: fmt.Sprint("type-", i), Quantity: 1}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	state, version, _ := h.Load(ctx, "cart-1")
	if version != 20 || len(state.Items) != 20 {
		t.Fatalf("%d items at version %d, want 20 at 20", len(state.Items), version)
	}
}

// conflictingStore fails every append with a concurrency conflict.
type conflictingStore struct {
	es.Store
	appends atomic.Int32
}

func (s *conflictingStore) Append(_ context.Context, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.appends.Add(1)
	return nil, &es.VersionConflictError{StreamID: a[0].StreamID, Expected: a[0].Expected, Actual: 99}
}

func TestHandlerGivesUpAfterMaxAttempts(t *testing.T) {
	store := &conflictingStore{Store: memory.New(memory.Config{})}
	h := newCartHandler(store, es.HandlerConfig{MaxAttempts: 3})
	_, err := h.Handle(context.Background(), "", "cart-1", AddItem{TicketType: "vip", Quantity: 1})
	if !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	if n := store.appends.Load(); n != 3 {
		t.Fatalf("tried %d times, want 3", n)
	}
}

func TestHandlerRecordsCorrelationAndCausation(t *testing.T) {
	store := memory.New(memory.Config{})
	h := newCartHandler(store, es.HandlerConfig{})
	corr, cmdID := es.NewID(), es.NewID()
	ctx := es.WithMetadata(context.Background(), es.Metadata{CorrelationID: corr, Extra: map[string]string{"user": "u-1"}})
	if _, err := h.Handle(ctx, cmdID, "cart-1", AddItem{TicketType: "vip", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	// Without a correlation ID, the command starts a new correlation.
	other := es.NewID()
	if _, err := h.Handle(context.Background(), other, "cart-2", AddItem{TicketType: "vip", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	evs, _ := es.Collect(store.ReadAll(context.Background(), es.AllQuery{}))
	if md := evs[0].Metadata; md.CorrelationID != corr || md.CausationID != cmdID || md.Extra["user"] != "u-1" {
		t.Fatalf("metadata = %+v", md)
	}
	if md := evs[1].Metadata; md.CorrelationID != other || md.CausationID != other {
		t.Fatalf("metadata = %+v, want the command ID as correlation and causation", md)
	}
}

func TestCommandIDReusedOnAnotherStreamIsRefused(t *testing.T) {
	ctx := context.Background()
	h := newCartHandler(memory.New(memory.Config{}), es.HandlerConfig{})
	id := es.NewID()
	if _, err := h.Handle(ctx, id, "cart-1", AddItem{TicketType: "vip", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, id, "cart-2", AddItem{TicketType: "vip", Quantity: 1}); !errors.Is(err, es.ErrDuplicateEventID) {
		t.Fatalf("got %v, want ErrDuplicateEventID", err)
	}
}

func TestUndecodableStreamIsAnError(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	if _, err := es.Append(ctx, store, "cart-1", es.NoStream, es.EventData{ID: es.NewID(), Type: "Mystery", SchemaVersion: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	_, err := newCartHandler(store, es.HandlerConfig{}).Handle(ctx, "", "cart-1", Confirm{})
	if !errors.Is(err, es.ErrUnknownEventType) {
		t.Fatalf("got %v, want ErrUnknownEventType", err)
	}
}

type CartCheckedOut struct {
	CartID  string         `json:"cart_id"`
	Tickets map[string]int `json:"tickets"`
}

func TestHandlerAnnouncesMessagesWithItsEvents(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := cartRegistry()
	es.MustRegister[CartCheckedOut](reg, "carts.CartCheckedOut")
	h := es.NewCommandHandler(store, reg, cartDecider, es.HandlerConfig{Announce: es.Announce(func(stream string, c Cart, evs []CartEvent) []es.Send {
		for _, e := range evs {
			if _, ok := e.(CartConfirmed); ok {
				return []es.Send{{Message: CartCheckedOut{CartID: stream, Tickets: c.Items}}}
			}
		}
		return nil
	})})
	if _, err := h.Handle(ctx, "", "cart-1", AddItem{TicketType: "vip", Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	if n, _ := store.Backlog(ctx); n != 0 {
		t.Fatalf("backlog = %d after adding an item, want 0", n)
	}
	id := es.NewID()
	for range 2 { // the second handling is a repeat: nothing more is enqueued
		if _, err := h.Handle(ctx, id, "cart-1", Confirm{}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := store.Due(ctx, time.Now(), allBuckets(), 10)
	if len(msgs) != 1 || msgs[0].Key != "cart-1" || msgs[0].Metadata.CausationID != id {
		t.Fatalf("outbox = %+v, want one message keyed by the cart, caused by the command", msgs)
	}
	v, _ := es.DecodeMessage(reg, msgs[0].Message)
	if got := v.(CartCheckedOut); got.CartID != "cart-1" || got.Tickets["vip"] != 2 {
		t.Fatalf("message = %+v", got)
	}
	// A refused command announces nothing.
	if _, err := h.Handle(ctx, "", "cart-1", Confirm{}); !errors.Is(err, ErrCartConfirmed) {
		t.Fatalf("got %v", err)
	}
	if n, _ := store.Backlog(ctx); n != 1 {
		t.Fatalf("backlog = %d, want 1", n)
	}
}

func TestAnnouncingNeedsAnOutbox(t *testing.T) {
	type plain struct{ es.Store }
	h := es.NewCommandHandler(plain{memory.New(memory.Config{})}, cartRegistry(), cartDecider, es.HandlerConfig{
		Announce: es.Announce(func(string, Cart, []CartEvent) []es.Send { return nil })})
	if _, err := h.Handle(context.Background(), "", "cart-1", AddItem{TicketType: "vip", Quantity: 1}); err == nil || !strings.Contains(err.Error(), "no outbox") {
		t.Fatalf("got %v, want an error about the missing outbox", err)
	}
}

func TestAnnouncerOfAnotherTypeIsAConfigError(t *testing.T) {
	h := es.NewCommandHandler(memory.New(memory.Config{}), cartRegistry(), cartDecider, es.HandlerConfig{
		Announce: es.Announce(func(string, int, []string) []es.Send { return nil })})
	if _, err := h.Handle(context.Background(), "", "cart-1", AddItem{TicketType: "vip", Quantity: 1}); !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
	h = es.NewCommandHandler(memory.New(memory.Config{}), cartRegistry(), cartDecider, es.HandlerConfig{MaxAttempts: -1})
	if _, err := h.Handle(context.Background(), "", "cart-1", AddItem{TicketType: "vip", Quantity: 1}); !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("got %v, want ErrInvalidConfig", err)
	}
}

func TestSerializedHandlerNeedsNoRetriesOnAHotStream(t *testing.T) {
	ctx := context.Background()
	store := &countingStore{Store: memory.New(memory.Config{})}
	h := newCartHandler(store, es.HandlerConfig{MaxAttempts: 1, SerializePerStream: true})
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			stream := "cart-" + fmt.Sprint(i%3)
			if _, err := h.Handle(ctx, "", stream, AddItem{TicketType: fmt.Sprint("t-", i), Quantity: 1}); err != nil {
				t.Error(err) // one attempt only: a conflict would fail the command
			}
		})
	}
	wg.Wait()
	if n := store.appends.Load(); n != 100 {
		t.Fatalf("%d appends for 100 commands", n)
	}
	// A cancelled context does not wait for the stream.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := h.Handle(cctx, "", "cart-0", Confirm{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

type countingStore struct {
	es.Store
	appends atomic.Int32
}

func (s *countingStore) Append(ctx context.Context, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.appends.Add(1)
	return s.Store.Append(ctx, a...)
}
