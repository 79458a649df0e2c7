package estest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
)

// testMultiStreamCommand runs an [es.MultiStreamHandler] against the store:
// a transfer between two accounts, guarded by a limit that it only reads.
// It checks what the handler needs of a store across streams: a conflict
// on one stream writes nothing on any, each stream keeps its own
// expectation, a command's events in several streams are recognised as a
// repeat (also when a racing handling stored them first) and, on an
// outbox, messages commit with the events or not at all.
func testMultiStreamCommand(t *testing.T, s es.Store) {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[msCredited](reg, "estest.Credited")
	es.MustRegister[msDebited](reg, "estest.Debited")
	es.MustRegister[msTransferred](reg, "estest.Transferred")
	ps := newMSPausing(s)
	store := ps.store()
	h := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{MaxAttempts: 1})
	retrying := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{})
	// setUp appends as another writer would, bypassing the handler.
	setUp := func(stream string, e any) {
		t.Helper()
		d, err := reg.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, s, stream, es.AnyVersion, d)
	}
	_, outbox := s.(es.Outbox)
	setUp("acct-a", msCredited{Amount: 100, Balance: 100})
	setUp("limit-1", msCredited{Amount: 80, Balance: 80})

	// A conflict on one stream writes nothing on any.
	ps.before(func() { setUp("acct-a", msDebited{Amount: 50, Balance: 50}) })
	_, err := h.Handle(ctx, es.NewID(), msTransfer("acct-a", "acct-b", "limit-1", 60, outbox))
	var conflict *es.VersionConflictError
	if !errors.As(err, &conflict) || conflict.StreamID != "acct-a" {
		t.Fatalf("transfer over a moved account: got %v, want a conflict on acct-a", err)
	}
	if n := len(readStream(t, s, "acct-b", es.StreamQuery{})); n != 0 {
		t.Fatalf("a conflict on acct-a let %d events into acct-b", n)
	}
	if outbox {
		if n := backlog(t, s.(es.Outbox)); n != 0 {
			t.Fatalf("a conflicting transfer enqueued %d messages", n)
		}
	}

	// A stream only read guards the decision too, and a retry decides on
	// fresh state: the limit drops below the amount, so the transfer is
	// refused, and nothing is written.
	ps.before(func() { setUp("limit-1", msDebited{Amount: 40, Balance: 40}) })
	if _, err := retrying.Handle(ctx, es.NewID(), msTransfer("acct-a", "acct-b", "limit-1", 45, outbox)); !errors.Is(err, errMSLimit) {
		t.Fatalf("transfer over a lowered limit: got %v, want the limit's error", err)
	}
	if n := len(readStream(t, s, "acct-b", es.StreamQuery{})); n != 0 {
		t.Fatalf("a refused transfer wrote %d events", n)
	}

	// Each stream expects its own version.
	cmd := es.NewID()
	ps.before(func() { setUp("acct-a", msCredited{Amount: 5, Balance: 55}) })
	first, err := retrying.Handle(ctx, cmd, msTransfer("acct-a", "acct-b", "limit-1", 30, outbox))
	if err != nil {
		t.Fatal(err)
	}
	if first.Repeated || len(first.Streams) != 2 {
		t.Fatalf("transfer = %+v, want two streams written", first)
	}
	if a, b := first.Streams[0], first.Streams[1]; a.StreamID != "acct-a" || a.Version != 4 || b.StreamID != "acct-b" || b.Version != 1 ||
		fmt.Sprint(a.Events) != "[{30 25}]" || fmt.Sprint(b.Events) != "[{30 30}]" {
		t.Fatalf("transfer = %+v, want acct-a at 4 debited to 25 and acct-b at 1 credited with 30", first.Streams)
	}
	for _, r := range first.Streams {
		evs := readStream(t, s, r.StreamID, es.StreamQuery{})
		e := evs[len(evs)-1]
		if e.ID != es.DeriveID(cmd+"@"+r.StreamID, 0) || e.Metadata.CausationID != cmd || e.Position != r.Position {
			t.Fatalf("%s: stored %+v; want the ID derived from command and stream, caused by the command, at position %d", r.StreamID, e, r.Position)
		}
	}
	if outbox {
		// Due may hold messages back while other transactions of the
		// database are running; wait for it to catch up.
		var msgs []es.OutboxMessage
		for deadline := time.Now().Add(10 * time.Second); len(msgs) == 0 && time.Now().Before(deadline); {
			if msgs = due(t, s.(es.Outbox), time.Now().Add(time.Hour)); len(msgs) == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
		if len(msgs) != 1 || msgs[0].ID != es.DeriveID(cmd+"/message", 0) || msgs[0].Metadata.CausationID != cmd {
			t.Fatalf("outbox = %+v, want the transfer's message", msgs)
		}
	}

	// The same command again is a repeat: nothing written, the stored
	// outcome returned.
	setUp("acct-a", msCredited{Amount: 1, Balance: 26})
	// Count stream by stream: a store's global order may lag behind
	// while other transactions run.
	count := func() int {
		n := 0
		for _, id := range []string{"acct-a", "acct-b", "acct-c", "limit-1"} {
			n += len(readStream(t, s, id, es.StreamQuery{}))
		}
		return n
	}
	before := count()
	again, err := h.Handle(ctx, cmd, msTransfer("acct-a", "acct-b", "limit-1", 30, outbox))
	if err != nil || !again.Repeated || fmt.Sprint(again.Streams) != fmt.Sprint(first.Streams) {
		t.Fatalf("repeated transfer = %+v, %v; want the first outcome %+v, repeated", again, err, first)
	}
	if n := count(); n != before {
		t.Fatalf("a repeated transfer wrote %d events", n-before)
	}

	// A handling that loses a race with another of the same command is
	// taken by the store as a repeat of all its streams, guard included.
	cmd = es.NewID()
	var inner es.MultiStreamResult
	ps.before(func() {
		var err error
		if inner, err = h.Handle(ctx, cmd, msTransfer("acct-b", "acct-c", "limit-1", 10, outbox)); err != nil {
			t.Errorf("inner handling: %v", err)
		}
	})
	outer, err := h.Handle(ctx, cmd, msTransfer("acct-b", "acct-c", "limit-1", 10, outbox))
	if err != nil || !outer.Repeated || inner.Repeated || fmt.Sprint(outer.Streams) != fmt.Sprint(inner.Streams) {
		t.Fatalf("racing handlings: outer %+v, %v; inner %+v; want the outer one repeated, with the inner outcome", outer, err, inner)
	}
	if n := len(readStream(t, s, "acct-c", es.StreamQuery{})); n != 1 {
		t.Fatalf("racing handlings wrote %d events to acct-c, want 1", n)
	}
	if outbox {
		if n := backlog(t, s.(es.Outbox)); n != 2 {
			t.Fatalf("backlog = %d after two transfers, want 2", n)
		}
	}
}

// An account (and a limit) is a balance.
type (
	msCredited struct {
		Amount  int `json:"amount"`
		Balance int `json:"balance"`
	}
	msDebited struct {
		Amount  int `json:"amount"`
		Balance int `json:"balance"`
	}
	msTransferred struct {
		From   string `json:"from"`
		To     string `json:"to"`
		Amount int    `json:"amount"`
	}
	msCredit struct{ Amount int }
	msDebit  struct{ Amount int }
)

var errMSLimit = errors.New("estest: over the limit")

var msAccount = es.Decider[int, any, any]{
	Initial: func() int { return 0 },
	Decide: func(balance int, cmd any) ([]any, error) {
		switch cmd := cmd.(type) {
		case msCredit:
			return []any{msCredited{Amount: cmd.Amount, Balance: balance + cmd.Amount}}, nil
		case msDebit:
			if cmd.Amount > balance {
				return nil, errors.New("estest: insufficient funds")
			}
			return []any{msDebited{Amount: cmd.Amount, Balance: balance - cmd.Amount}}, nil
		}
		return nil, fmt.Errorf("estest: unknown command %T", cmd)
	},
	Evolve: func(balance int, e any) int {
		switch e := e.(type) {
		case msCredited:
			return e.Balance
		case msDebited:
			return e.Balance
		}
		return balance
	},
}

// msTransfer moves amount from one account to another if the limit, which
// it reads without changing, allows it, and with an outbox tells about it.
func msTransfer(from, to, limit string, amount int, send bool) func(context.Context, *es.Decision) error {
	return func(ctx context.Context, d *es.Decision) error {
		allowed, err := es.Load(ctx, d, msAccount, limit)
		if err != nil {
			return err
		}
		if amount > allowed {
			return errMSLimit
		}
		if _, err := es.DecideOn(ctx, d, msAccount, from, any(msDebit{Amount: amount})); err != nil {
			return err
		}
		if _, err := es.DecideOn(ctx, d, msAccount, to, any(msCredit{Amount: amount})); err != nil {
			return err
		}
		if !send {
			return nil
		}
		return d.Send(es.Send{Key: from, Message: msTransferred{From: from, To: to, Amount: amount}})
	}
}

// msPausing wraps a store so that a function runs before one append passes
// through: the suite puts another writer's append there, between a
// handler's load and its append, deterministically.
type msPausing struct {
	pause atomic.Pointer[func()]
	inner es.Store
}

func newMSPausing(s es.Store) *msPausing { return &msPausing{inner: s} }

// before makes fn run before the next append.
func (p *msPausing) before(fn func()) { p.pause.Store(&fn) }

func (p *msPausing) paused() {
	if fn := p.pause.Swap(nil); fn != nil {
		(*fn)()
	}
}

// store returns the wrapped store, an es.Outbox if the inner store is one.
func (p *msPausing) store() es.Store {
	if o, ok := p.inner.(es.Outbox); ok {
		return msPausingOutbox{Outbox: o, p: p}
	}
	return msPausingStore{Store: p.inner, p: p}
}

type msPausingStore struct {
	es.Store
	p *msPausing
}

func (s msPausingStore) Append(ctx context.Context, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.p.paused()
	return s.Store.Append(ctx, a...)
}

type msPausingOutbox struct {
	es.Outbox
	p *msPausing
}

func (s msPausingOutbox) Append(ctx context.Context, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.p.paused()
	return s.Outbox.Append(ctx, a...)
}

func (s msPausingOutbox) AppendEnqueue(ctx context.Context, enq es.Enqueue, a ...es.StreamAppend) ([]es.AppendResult, error) {
	s.p.paused()
	return s.Outbox.AppendEnqueue(ctx, enq, a...)
}
