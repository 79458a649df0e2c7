package es_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// A ticket pool: the second stream of a checkout, with a state type of its
// own. A checkout confirms the cart and takes its seats from the pool, in
// one decision over both streams.

type PoolEvent interface{ isPoolEvent() }

type Stocked struct {
	Seats int `json:"seats"`
}

type Taken struct {
	Seats int `json:"seats"`
	Left  int `json:"left"`
}

func (Stocked) isPoolEvent() {}
func (Taken) isPoolEvent()   {}

type Stock struct{ Seats int }

type Take struct{ Seats int }

var ErrSoldOut = errors.New("sold out")

var poolDecider = es.Decider[int, any, PoolEvent]{
	Initial: func() int { return 0 },
	Decide: func(left int, cmd any) ([]PoolEvent, error) {
		switch cmd := cmd.(type) {
		case Stock:
			//lint:ignore S1016 an event is not a converted command: their fields must stay free to differ
			return []PoolEvent{Stocked{Seats: cmd.Seats}}, nil
		case Take:
			if cmd.Seats > left {
				return nil, ErrSoldOut
			}
			return []PoolEvent{Taken{Seats: cmd.Seats, Left: left - cmd.Seats}}, nil
		}
		return nil, errors.New("unknown command")
	},
	Evolve: func(left int, e PoolEvent) int {
		switch e := e.(type) {
		case Stocked:
			return left + e.Seats
		case Taken:
			return e.Left
		}
		return left
	},
}

func checkoutRegistry() *es.Registry {
	reg := cartRegistry()
	es.MustRegister[Stocked](reg, "Stocked")
	es.MustRegister[Taken](reg, "Taken")
	es.MustRegister[CartCheckedOut](reg, "carts.CartCheckedOut")
	return reg
}

// checkout confirms cart and takes as many seats from pool as the cart
// holds tickets.
func checkout(cart, pool string) func(context.Context, *es.Decision) error {
	return func(ctx context.Context, d *es.Decision) error {
		c, err := es.Load(ctx, d, cartDecider, cart)
		if err != nil {
			return err
		}
		if _, err := es.DecideOn(ctx, d, cartDecider, cart, any(Confirm{})); err != nil {
			return err
		}
		seats := 0
		for _, n := range c.Items {
			seats += n
		}
		_, err = es.DecideOn(ctx, d, poolDecider, pool, any(Take{Seats: seats}))
		return err
	}
}

// pausingStore is a memory store that runs a function before one append
// passes through: a test puts another writer's append there, between a
// handler's load and its append, deterministically.
type pausingStore struct {
	*memory.Store
	pause   atomic.Pointer[func()]
	appends atomic.Int32
}

func newPausingStore() *pausingStore { return &pausingStore{Store: memory.New(memory.Config{})} }

// before makes fn run before the next append.
func (s *pausingStore) before(fn func()) { s.pause.Store(&fn) }

func (s *pausingStore) paused() {
	s.appends.Add(1)
	if fn := s.pause.Swap(nil); fn != nil {
		(*fn)()
	}
}

func (s *pausingStore) Append(ctx context.Context, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.paused()
	return s.Store.Append(ctx, a...)
}

func (s *pausingStore) AppendEnqueue(ctx context.Context, enq es.Enqueue, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.paused()
	return s.Store.AppendEnqueue(ctx, enq, a...)
}

// given appends events to a stream, as another writer would.
func given(t *testing.T, s es.Store, stream string, events ...any) {
	t.Helper()
	reg := checkoutRegistry()
	var data []es.EventData
	for _, e := range events {
		d, err := reg.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, d)
	}
	if _, err := es.Append(context.Background(), s, stream, es.AnyVersion, data...); err != nil {
		t.Fatal(err)
	}
}

func readStream(t *testing.T, s es.Store, stream string) []es.Event {
	t.Helper()
	evs, err := es.Collect(s.ReadStream(context.Background(), stream, es.StreamQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func countEvents(t *testing.T, s es.Store) int {
	t.Helper()
	evs, err := es.Collect(s.ReadAll(context.Background(), es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func TestMultiStreamHandlerAppendsToEveryStreamInOneAppend(t *testing.T) {
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 10})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	store.appends.Store(0)
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	cmd, corr := es.NewID(), es.NewID()
	ctx := es.WithMetadata(context.Background(), es.Metadata{CorrelationID: corr, TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		Extra: map[string]string{"user": "u-1"}})
	res, err := h.Handle(ctx, cmd, checkout("cart-1", "pool-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := store.appends.Load(); n != 1 {
		t.Fatalf("%d appends, want 1", n)
	}
	if res.Repeated || len(res.Streams) != 2 {
		t.Fatalf("result = %+v, want two streams, not repeated", res)
	}
	cart, pool := res.Streams[0], res.Streams[1]
	if cart.StreamID != "cart-1" || cart.Version != 2 || fmt.Sprint(cart.Events) != "[{}]" {
		t.Errorf("cart result = %+v", cart)
	}
	if pool.StreamID != "pool-1" || pool.Version != 2 || fmt.Sprint(pool.Events) != "[{3 7}]" {
		t.Errorf("pool result = %+v", pool)
	}
	if pool.Position != 4 || cart.Position != 3 {
		t.Errorf("positions: cart %d, pool %d; want 3 and 4", cart.Position, pool.Position)
	}
	for _, r := range res.Streams {
		e := readStream(t, store, r.StreamID)[1]
		if want := es.DeriveID(cmd+"@"+r.StreamID, 0); e.ID != want {
			t.Errorf("%s: event ID %s, want %s, derived from command and stream", r.StreamID, e.ID, want)
		}
		md := e.Metadata
		if md.CausationID != cmd || md.CorrelationID != corr || md.TraceParent == "" || md.Extra["user"] != "u-1" {
			t.Errorf("%s: metadata = %+v", r.StreamID, md)
		}
	}
	// Without a correlation ID in the context, the command starts one.
	given(t, store, "cart-2", ItemAdded{TicketType: "vip", Quantity: 1})
	other := es.NewID()
	if _, err := h.Handle(context.Background(), other, checkout("cart-2", "pool-1")); err != nil {
		t.Fatal(err)
	}
	if md := readStream(t, store, "pool-1")[2].Metadata; md.CorrelationID != other || md.CausationID != other {
		t.Fatalf("metadata = %+v, want the command ID as correlation and causation", md)
	}
}

func TestMultiStreamConflictOnOneStreamWritesNothingAnywhere(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 10})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	// Between the handler's load and its append, another writer moves the
	// pool on; with one attempt only, the conflict is the answer.
	store.before(func() { given(t, store, "pool-1", Stocked{Seats: 1}) })
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{MaxAttempts: 1})
	_, err := h.Handle(ctx, es.NewID(), checkout("cart-1", "pool-1"))
	var conflict *es.VersionConflictError
	if !errors.Is(err, es.ErrConcurrency) || !errors.As(err, &conflict) || conflict.StreamID != "pool-1" {
		t.Fatalf("got %v, want a conflict on pool-1", err)
	}
	if n := len(readStream(t, store, "cart-1")); n != 1 {
		t.Fatalf("the cart has %d events: the conflict on the pool let the cart's through", n)
	}
	if n := countEvents(t, store); n != 3 {
		t.Fatalf("store has %d events, want 3", n)
	}
}

func TestMultiStreamDecidesAgainOnTheStreamAnotherWriterMoved(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 10})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	given(t, store, "cart-2", ItemAdded{TicketType: "vip", Quantity: 3})
	store.appends.Store(0)
	store.before(func() { given(t, store, "pool-1", Taken{Seats: 6, Left: 4}) })
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	res, err := h.Handle(ctx, es.NewID(), checkout("cart-1", "pool-1"))
	if err != nil {
		t.Fatal(err)
	}
	if n := store.appends.Load(); n != 3 {
		t.Fatalf("%d appends, want 2 attempts and the other writer's", n)
	}
	// Decided again on the pool as the other writer left it.
	if pool := res.Streams[1]; pool.Version != 3 || fmt.Sprint(pool.Events) != "[{3 1}]" {
		t.Fatalf("pool result = %+v, want 3 taken leaving 1, at version 3", pool)
	}
	// The next checkout is decided on fresh state too, and refused: nothing
	// of it is written.
	store.before(func() { given(t, store, "pool-1", Taken{Seats: 1, Left: 0}) })
	if _, err := h.Handle(ctx, es.NewID(), checkout("cart-2", "pool-1")); !errors.Is(err, ErrSoldOut) {
		t.Fatalf("got %v, want ErrSoldOut", err)
	}
	if n := len(readStream(t, store, "cart-2")); n != 1 {
		t.Fatalf("cart-2 has %d events, want 1", n)
	}
}

func TestMultiStreamGuardsAStreamItOnlyRead(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 2})
	// Stock the pool's twin with as many seats as the pool has left.
	mirror := func(ctx context.Context, d *es.Decision) error {
		left, err := es.Load(ctx, d, poolDecider, "pool-1")
		if err != nil {
			return err
		}
		twin, err := es.Load(ctx, d, poolDecider, "pool-2")
		if err != nil {
			return err
		}
		if left == twin {
			return nil
		}
		return es.Record(d, "pool-2", Stocked{Seats: left - twin})
	}
	store.before(func() { given(t, store, "pool-1", Stocked{Seats: 3}) })
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	res, err := h.Handle(ctx, es.NewID(), mirror)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Streams) != 1 || fmt.Sprint(res.Streams[0].Events) != "[{5}]" {
		t.Fatalf("result = %+v, want pool-2 stocked with 5: the read pool moved and the decision was made again", res)
	}
	// Nothing to decide: nothing is appended.
	n := store.appends.Load()
	res, err = h.Handle(ctx, es.NewID(), mirror)
	if err != nil || len(res.Streams) != 0 || store.appends.Load() != n {
		t.Fatalf("result = %+v, %v after %d appends; want nothing appended", res, err, store.appends.Load()-n)
	}
}

func TestMultiStreamIsIdempotentByCommandID(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 10})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	cmd := es.NewID()
	first, err := h.Handle(ctx, cmd, checkout("cart-1", "pool-1"))
	if err != nil {
		t.Fatal(err)
	}
	// Others take seats meanwhile: the repeat must not decide again (it
	// would take 3 more seats).
	given(t, store, "pool-1", Taken{Seats: 1, Left: 6})
	before := countEvents(t, store)
	again, err := h.Handle(ctx, cmd, checkout("cart-1", "pool-1"))
	if err != nil {
		t.Fatalf("repeated command: %v", err)
	}
	if !again.Repeated || first.Repeated {
		t.Fatalf("repeated = %v, first %v; want true, false", again.Repeated, first.Repeated)
	}
	if fmt.Sprintf("%+v", again.Streams) != fmt.Sprintf("%+v", first.Streams) {
		t.Fatalf("repeat = %+v, want the stored outcome %+v", again.Streams, first.Streams)
	}
	if n := countEvents(t, store); n != before {
		t.Fatalf("the repeat wrote %d events", n-before)
	}
	// A repeat is recognised in any stream it wrote to, whichever the
	// decision loads first.
	poolFirst := func(ctx context.Context, d *es.Decision) error {
		_, err := es.DecideOn(ctx, d, poolDecider, "pool-1", any(Take{Seats: 3}))
		return err
	}
	res, err := h.Handle(ctx, cmd, poolFirst)
	if err != nil || !res.Repeated || len(res.Streams) != 1 || res.Streams[0].StreamID != "pool-1" {
		t.Fatalf("repeat = %+v, %v; want the pool's stored outcome", res, err)
	}
	if n := countEvents(t, store); n != before {
		t.Fatalf("the repeat wrote %d events", n-before)
	}
}

func TestMultiStreamRacingRepeatIsReportedRepeated(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 10})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{MaxAttempts: 1})
	cmd := es.NewID()
	// The same command is handled to the end between the first handling's
	// load and its append: the store takes that append as a repeat.
	var inner es.MultiStreamResult
	store.before(func() {
		var err error
		if inner, err = h.Handle(ctx, cmd, checkout("cart-1", "pool-1")); err != nil {
			t.Error(err)
		}
	})
	outer, err := h.Handle(ctx, cmd, checkout("cart-1", "pool-1"))
	if err != nil {
		t.Fatal(err)
	}
	if inner.Repeated || !outer.Repeated {
		t.Fatalf("repeated: inner %v, outer %v; want false, true", inner.Repeated, outer.Repeated)
	}
	if fmt.Sprintf("%+v", outer.Streams) != fmt.Sprintf("%+v", inner.Streams) {
		t.Fatalf("outer = %+v, want the stored outcome %+v", outer.Streams, inner.Streams)
	}
	if n := countEvents(t, store); n != 4 {
		t.Fatalf("store has %d events, want 4", n)
	}
}

func TestMultiStreamRacingRepeatWithOtherDataIsReportedRepeated(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{MaxAttempts: 1})
	cmd := es.NewID()
	// A decision may differ from one handling to the next (a salted
	// password hash, say): the store then refuses the second handling's
	// events as duplicates of other data, and the handler must find out
	// that the command was handled.
	var seats atomic.Int32
	stock := func(ctx context.Context, d *es.Decision) error {
		_, err := es.DecideOn(ctx, d, poolDecider, "pool-1", any(Stock{Seats: int(seats.Add(1))}))
		return err
	}
	store.before(func() {
		if _, err := h.Handle(ctx, cmd, stock); err != nil {
			t.Error(err)
		}
	})
	res, err := h.Handle(ctx, cmd, stock)
	if err != nil || !res.Repeated || fmt.Sprint(res.Streams[0].Events) != "[{2}]" {
		t.Fatalf("got %+v, %v; want the stored outcome (2 seats), repeated", res, err)
	}
}

func TestMultiStreamBusinessErrorWritesNothing(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 2})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	store.appends.Store(0)
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	// The cart is confirmed first, then the pool refuses.
	_, err := h.Handle(ctx, es.NewID(), checkout("cart-1", "pool-1"))
	if !errors.Is(err, ErrSoldOut) || err != ErrSoldOut {
		t.Fatalf("got %v, want ErrSoldOut unchanged", err)
	}
	wrapped := func(ctx context.Context, d *es.Decision) error {
		return fmt.Errorf("checkout: %w", checkout("cart-1", "pool-1")(ctx, d))
	}
	if _, err := h.Handle(ctx, es.NewID(), wrapped); !errors.Is(err, ErrSoldOut) {
		t.Fatalf("got %v, want ErrSoldOut", err)
	}
	if n := store.appends.Load(); n != 0 {
		t.Fatalf("%d appends for refused commands", n)
	}
}

func TestMultiStreamRecordingOnAStreamNotLoadedFails(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	var recordErr error
	_, err := h.Handle(ctx, es.NewID(), func(ctx context.Context, d *es.Decision) error {
		if _, err := es.DecideOn(ctx, d, poolDecider, "pool-1", any(Stock{Seats: 1})); err != nil {
			return err
		}
		// The error is ignored here, but not by the handler.
		recordErr = es.Record(d, "cart-1", CartConfirmed{})
		return nil
	})
	if recordErr == nil || !strings.Contains(recordErr.Error(), "not loaded") {
		t.Fatalf("Record = %v, want an error about the stream not loaded", recordErr)
	}
	if !errors.Is(err, recordErr) {
		t.Fatalf("Handle = %v, want %v", err, recordErr)
	}
	if n := countEvents(t, store); n != 0 {
		t.Fatalf("%d events written", n)
	}
}

func TestMultiStreamFailsOnUndecodableOrUnregisteredEvents(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	if _, err := es.Append(ctx, store, "cart-1", es.NoStream, es.EventData{ID: es.NewID(), Type: "Mystery", SchemaVersion: 1, Data: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{})
	if _, err := h.Handle(ctx, es.NewID(), checkout("cart-1", "pool-1")); !errors.Is(err, es.ErrUnknownEventType) {
		t.Fatalf("got %v, want ErrUnknownEventType", err)
	}
	type Unregistered struct{ PoolEvent }
	_, err := h.Handle(ctx, es.NewID(), func(ctx context.Context, d *es.Decision) error {
		if _, err := es.Load(ctx, d, poolDecider, "pool-1"); err != nil {
			return err
		}
		es.Record(d, "pool-1", PoolEvent(Unregistered{}))
		return nil
	})
	if !errors.Is(err, es.ErrUnknownEventType) {
		t.Fatalf("got %v, want ErrUnknownEventType", err)
	}
}

func TestMultiStreamGivesUpAfterMaxAttempts(t *testing.T) {
	store := &conflictingStore{Store: memory.New(memory.Config{})}
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{MaxAttempts: 3})
	stock := func(ctx context.Context, d *es.Decision) error {
		_, err := es.DecideOn(ctx, d, poolDecider, "pool-1", any(Stock{Seats: 1}))
		return err
	}
	if _, err := h.Handle(context.Background(), es.NewID(), stock); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	if n := store.appends.Load(); n != 3 {
		t.Fatalf("tried %d times, want 3", n)
	}
	store.appends.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Handle(ctx, es.NewID(), stock); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestMultiStreamSendsMessagesWithItsEvents(t *testing.T) {
	ctx := context.Background()
	store := newPausingStore()
	given(t, store, "pool-1", Stocked{Seats: 10})
	given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 3})
	h := es.NewMultiStreamHandler(store, checkoutRegistry(), es.HandlerConfig{MaxAttempts: 1})
	checkoutAndTell := func(ctx context.Context, d *es.Decision) error {
		if err := checkout("cart-1", "pool-1")(ctx, d); err != nil {
			return err
		}
		return d.Send(es.Send{Key: "cart-1", Message: CartCheckedOut{CartID: "cart-1", Tickets: map[string]int{"vip": 3}}})
	}
	// A conflict enqueues nothing.
	store.before(func() { given(t, store, "cart-1", ItemAdded{TicketType: "vip", Quantity: 0}) })
	if _, err := h.Handle(ctx, es.NewID(), checkoutAndTell); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want ErrConcurrency", err)
	}
	if n, _ := store.Backlog(ctx); n != 0 {
		t.Fatalf("backlog = %d after a conflict, want 0", n)
	}
	cmd := es.NewID()
	for range 2 { // the second handling is a repeat: nothing more is enqueued
		if _, err := h.Handle(ctx, cmd, checkoutAndTell); err != nil {
			t.Fatal(err)
		}
	}
	msgs, _ := store.Due(ctx, time.Now(), allBuckets(), 10)
	if len(msgs) != 1 {
		t.Fatalf("outbox = %+v, want one message", msgs)
	}
	m := msgs[0]
	if m.ID != es.DeriveID(cmd+"/message", 0) || m.Key != "cart-1" || m.Metadata.CausationID != cmd {
		t.Fatalf("message = %+v, want its ID derived from the command, keyed by the cart, caused by the command", m)
	}
	// A refused command sends nothing.
	if _, err := h.Handle(ctx, es.NewID(), checkoutAndTell); !errors.Is(err, ErrCartConfirmed) {
		t.Fatalf("got %v, want ErrCartConfirmed", err)
	}
	if n, _ := store.Backlog(ctx); n != 1 {
		t.Fatalf("backlog = %d, want 1", n)
	}
}

func TestMultiStreamSendingNeedsAnOutboxAndAKey(t *testing.T) {
	type plain struct{ es.Store }
	msg := CartCheckedOut{CartID: "cart-1"}
	for name, tc := range map[string]struct {
		store es.Store
		send  es.Send
		want  string
	}{
		"no outbox": {plain{memory.New(memory.Config{})}, es.Send{Key: "cart-1", Message: msg}, "no outbox"},
		"no key":    {memory.New(memory.Config{}), es.Send{Message: msg}, "no key"},
	} {
		h := es.NewMultiStreamHandler(tc.store, checkoutRegistry(), es.HandlerConfig{})
		var sendErr error
		_, err := h.Handle(context.Background(), es.NewID(), func(ctx context.Context, d *es.Decision) error {
			if _, err := es.DecideOn(ctx, d, poolDecider, "pool-1", any(Stock{Seats: 1})); err != nil {
				return err
			}
			sendErr = d.Send(tc.send)
			return sendErr
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, sendErr) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, tc.want)
		}
		if n := countEvents(t, tc.store); n != 0 {
			t.Errorf("%s: %d events written", name, n)
		}
	}
}

func TestMultiStreamHandlerRefusesWhatItDoesNotSupport(t *testing.T) {
	for _, cfg := range []es.HandlerConfig{{MaxAttempts: -1}, {SerializePerStream: true},
		{Announce: es.Announce(func(string, Cart, []CartEvent) []es.Send { return nil })}} {
		h := es.NewMultiStreamHandler(memory.New(memory.Config{}), cartRegistry(), cfg)
		_, err := h.Handle(context.Background(), "", func(context.Context, *es.Decision) error { return nil })
		if !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("config %+v: Handle = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// readPausingStore runs a function before the first read of one stream.
type readPausingStore struct {
	*memory.Store
	stream string
	pause  atomic.Pointer[func()]
}

func (s *readPausingStore) ReadStream(ctx context.Context, stream string, q es.StreamQuery) iter.Seq2[es.Event, error] {
	if stream == s.stream {
		if fn := s.pause.Swap(nil); fn != nil {
			(*fn)()
		}
	}
	return s.Store.ReadStream(ctx, stream, q)
}

// A repeat that loads the first stream before the first handling commits
// and the second after it still returns the whole first outcome, not the
// part it saw.
func TestMultiStreamRepeatLoadedAcrossTheFirstCommit(t *testing.T) {
	ctx := context.Background()
	reg := checkoutRegistry()
	inner := memory.New(memory.Config{})
	given(t, inner, "cart-1", ItemAdded{TicketType: "standing", Quantity: 2})
	given(t, inner, "pool-1", Stocked{Seats: 10})
	paused := &readPausingStore{Store: inner, stream: "pool-1"}
	cmd := es.NewID()
	var first es.MultiStreamResult
	fn := func() {
		// The first handling commits while the repeat is between its loads
		// of the cart and the pool.
		var err error
		if first, err = es.NewMultiStreamHandler(inner, reg, es.HandlerConfig{}).Handle(ctx, cmd, checkout("cart-1", "pool-1")); err != nil {
			t.Error(err)
		}
	}
	paused.pause.Store(&fn)
	again, err := es.NewMultiStreamHandler(paused, reg, es.HandlerConfig{}).Handle(ctx, cmd, checkout("cart-1", "pool-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Streams) != 2 {
		t.Fatalf("first handling = %+v, want two streams", first)
	}
	if !again.Repeated || len(again.Streams) != 2 {
		t.Fatalf("repeat = %+v, want Repeated with both streams of %+v", again, first)
	}
}
