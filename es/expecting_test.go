package es_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

func TestHandleExpectingDecidesOnlyOnTheVersionGiven(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	h := newCartHandler(store, es.HandlerConfig{})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 1})
	var conflict *es.VersionConflictError
	if _, err := h.HandleExpecting(ctx, "", "cart-1", 0, AddItem{TicketType: "vip", Quantity: 1}); !errors.As(err, &conflict) ||
		conflict.Actual != 1 || !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("stale version: got %v, want a conflict at version 1", err)
	}
	id := es.NewID()
	res, err := h.HandleExpecting(ctx, id, "cart-1", 1, AddItem{TicketType: "vip", Quantity: 1})
	if err != nil || res.Version != 2 {
		t.Fatalf("current version: %+v, %v", res, err)
	}
	// A retry of the same command is a repeat, though the stream moved on.
	res, err = h.HandleExpecting(ctx, id, "cart-1", 1, AddItem{TicketType: "vip", Quantity: 1})
	if err != nil || !res.Repeated || res.Version != 2 {
		t.Fatalf("retry: %+v, %v; want the first outcome, repeated", res, err)
	}
	if _, err := h.HandleExpecting(ctx, "", "cart-1", -1, AddItem{TicketType: "vip", Quantity: 1}); !errors.Is(err, es.ErrInvalidAppend) {
		t.Fatalf("negative version: got %v, want ErrInvalidAppend", err)
	}
	if n := len(readStream(t, store, "cart-1")); n != 2 {
		t.Fatalf("cart-1 has %d events, want 2", n)
	}
}

func TestHandleExpectingDoesNotDecideAgainWhenAnotherWriterMovesTheStream(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	h := newCartHandler(store, es.HandlerConfig{MaxAttempts: 5})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 1})
	// Between the handler's load at version 1 and its append, another
	// writer appends: Handle would decide again on version 2; this must not.
	store.before(func() { given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 1}) })
	if _, err := h.HandleExpecting(ctx, "", "cart-1", 1, AddItem{TicketType: "vip", Quantity: 5}); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	evs := readStream(t, store, "cart-1")
	if len(evs) != 2 {
		t.Fatalf("cart-1 has %d events, want the 2 of the other writers", len(evs))
	}
}

func TestDecisionVersionIsTheLoadedVersion(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 2}, Stocked{Seats: 1})
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	var got []int64
	_, err := h.Handle(ctx, "", func(ctx context.Context, d *es.Decision) error {
		if _, ok := d.Version("pool-1"); ok {
			t.Error("a stream not loaded has a version")
		}
		if _, err := es.Load(ctx, d, poolDecider, "pool-1"); err != nil {
			return err
		}
		v, _ := d.Version("pool-1")
		got = append(got, v)
		if v != 3 { // the expectation a client brought: refuse, as an If-Match would
			return &es.VersionConflictError{StreamID: "pool-1", Expected: es.Exact(3), Actual: v}
		}
		return es.Record(d, "pool-1", Stocked{Seats: 1})
	})
	if !errors.Is(err, es.ErrConcurrency) || len(got) != 1 || got[0] != 2 {
		t.Fatalf("got %v after versions %v; want one conflict at version 2", err, got)
	}
}

// A client that read the cart at version 1 (its ETag) edits it: the edit
// is decided on that version or refused, never applied to a cart it has
// not seen.
func ExampleCommandHandler_HandleExpecting() {
	ctx := context.Background()
	carts := es.NewCommandHandler(memory.New(memory.Config{}), cartRegistry(), cartDecider, es.HandlerConfig{})
	res, _ := carts.Handle(ctx, "", "cart-1", AddItem{TicketType: "vip", Quantity: 1})
	read := res.Version // the client's ETag

	_, err := carts.HandleExpecting(ctx, "", "cart-1", read, AddItem{TicketType: "vip", Quantity: 1})
	fmt.Println("first edit:", err)
	_, err = carts.HandleExpecting(ctx, "", "cart-1", read, AddItem{TicketType: "vip", Quantity: 5})
	fmt.Println("second edit from the same read:", errors.Is(err, es.ErrConcurrency))
	// Output:
	// first edit: <nil>
	// second edit from the same read: true
}
