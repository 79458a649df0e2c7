package estest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// ProcessSpec is a given/when/then spec for an [es.ProcessManager]. It
// runs the real [es.ProcessHandler] over an in-memory outbox with a fake
// clock, so deadlines fire when the spec moves the clock, without sleeping.
// Make one with [Process].
type ProcessSpec[S, E any] struct {
	t       testing.TB
	reg     *es.Registry
	pm      es.ProcessManager[S, E]
	h       *es.ProcessHandler[S, E]
	store   *memory.Store
	clock   *FakeClock
	opts    []cmp.Option
	seen    map[int64]bool
	sent    []es.Message // sent since the last Given
	err     error
	acted   bool
	fired   []string // types of deadlines fired by WhenTimeElapses
	buckets []int
}

// processStart is when the clock of a ProcessSpec starts.
func processStart() time.Time { return time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC) }

// Process starts a spec for pm, whose messages and events are registered
// in reg. The clock starts at 2026-01-01 09:00 UTC.
func Process[S, E any](t testing.TB, reg *es.Registry, pm es.ProcessManager[S, E], opts ...cmp.Option) *ProcessSpec[S, E] {
	s := &ProcessSpec[S, E]{
		t: t, reg: reg, pm: pm, store: memory.New(memory.Config{}), clock: NewFakeClock(processStart()),
		opts: append([]cmp.Option{cmpopts.EquateEmpty()}, opts...), seen: map[int64]bool{},
	}
	for b := range es.OutboxBuckets {
		s.buckets = append(s.buckets, b)
	}
	s.h = es.NewProcessHandler(s.store, reg, pm, es.ProcessConfig{Clock: s.clock})
	return s
}

// Clock returns the spec's clock.
func (s *ProcessSpec[S, E]) Clock() *FakeClock { return s.clock }

// Given handles messages that make up the history. What they send is
// forgotten; the deadlines they set stay scheduled.
func (s *ProcessSpec[S, E]) Given(msgs ...any) *ProcessSpec[S, E] {
	s.t.Helper()
	for _, m := range msgs {
		if err := s.handle(m); err != nil {
			s.t.Fatalf("process spec: given %#v: %v", m, err)
		}
	}
	s.sent, s.fired = nil, nil
	return s
}

// When handles the message under test. Then and the other checks look at
// what the last When or WhenTimeElapses did.
func (s *ProcessSpec[S, E]) When(msg any) *ProcessSpec[S, E] {
	s.t.Helper()
	s.acted, s.sent, s.fired = true, nil, nil
	s.err = s.handle(msg)
	return s
}

// WhenTimeElapses moves the clock by d and delivers, in time order, the
// deadlines that fall due, as the relay would.
func (s *ProcessSpec[S, E]) WhenTimeElapses(d time.Duration) *ProcessSpec[S, E] {
	s.t.Helper()
	s.acted, s.sent, s.fired = true, nil, nil
	s.clock.Advance(d)
	for {
		due := s.scheduled(func(m es.OutboxMessage) bool { return !m.DeliverAt.After(s.clock.Now()) })
		if len(due) == 0 {
			return s
		}
		m := due[0]
		s.fired = append(s.fired, m.Type)
		if err := s.store.MarkDelivered(context.Background(), m.Seq); err != nil {
			s.t.Fatalf("process spec: %v", err)
		}
		if err := s.h.Handle(context.Background(), m.Message); err != nil {
			s.err = err
			return s
		}
		s.collect()
	}
}

func (s *ProcessSpec[S, E]) handle(v any) error {
	m, err := es.NewMessage(s.reg, "", v)
	if err != nil {
		return err
	}
	if err := s.h.Handle(context.Background(), m); err != nil {
		return err
	}
	s.collect()
	return nil
}

// collect moves newly sent immediate messages to s.sent.
func (s *ProcessSpec[S, E]) collect() {
	msgs, err := s.store.Due(context.Background(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), s.buckets, 1<<30)
	if err != nil {
		s.t.Fatalf("process spec: %v", err)
	}
	for _, m := range msgs {
		if s.seen[m.Seq] || !m.DeliverAt.IsZero() {
			continue
		}
		s.seen[m.Seq] = true
		s.sent = append(s.sent, m.Message)
		if err := s.store.MarkDelivered(context.Background(), m.Seq); err != nil {
			s.t.Fatalf("process spec: %v", err)
		}
	}
}

// scheduled returns the pending deadlines that satisfy keep, by due time.
func (s *ProcessSpec[S, E]) scheduled(keep func(es.OutboxMessage) bool) []es.OutboxMessage {
	msgs, err := s.store.Due(context.Background(), time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), s.buckets, 1<<30)
	if err != nil {
		s.t.Fatalf("process spec: %v", err)
	}
	var out []es.OutboxMessage
	for _, m := range msgs {
		if !m.DeliverAt.IsZero() && keep(m) {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b es.OutboxMessage) int { return a.DeliverAt.Compare(b.DeliverAt) })
	return out
}

func (s *ProcessSpec[S, E]) check() {
	s.t.Helper()
	if !s.acted {
		s.t.Fatalf("process spec: no When(message) or WhenTimeElapses(duration)")
	}
	if s.err != nil {
		s.t.Fatalf("process spec:%s\nwant a reaction, got error: %v", s.describe(), s.err)
	}
}

// Then expects the process to have sent exactly these messages (commands
// or integration events, not deadlines), in this order.
func (s *ProcessSpec[S, E]) Then(want ...any) *ProcessSpec[S, E] {
	s.t.Helper()
	s.check()
	var got []any
	for _, m := range s.sent {
		v, err := es.DecodeMessage(s.reg, m)
		if err != nil {
			s.t.Fatalf("process spec: sent message %s: %v", m.Type, err)
		}
		got = append(got, v)
	}
	if diff := cmp.Diff(want, got, s.opts...); diff != "" {
		s.t.Fatalf("process spec:%s\nsent messages differ (-want +got):\n%s", s.describe(), diff)
	}
	return s
}

// ThenNothing expects the process to have sent nothing.
func (s *ProcessSpec[S, E]) ThenNothing() *ProcessSpec[S, E] {
	s.t.Helper()
	return s.Then()
}

// ThenScheduled expects a deadline msg to be pending, due after from the
// spec's current time.
func (s *ProcessSpec[S, E]) ThenScheduled(after time.Duration, msg any) *ProcessSpec[S, E] {
	s.t.Helper()
	s.check()
	at := s.clock.Now().Add(after)
	var pending []string
	for _, m := range s.scheduled(func(es.OutboxMessage) bool { return true }) {
		v, err := es.DecodeMessage(s.reg, m.Message)
		if err == nil && m.DeliverAt.Equal(at) && cmp.Equal(msg, v, s.opts...) {
			return s
		}
		pending = append(pending, fmt.Sprintf("%s at +%v: %s", m.Type, m.DeliverAt.Sub(s.clock.Now()), m.Data))
	}
	s.t.Fatalf("process spec:%s\nwant deadline %#v due in %v; pending deadlines: %v", s.describe(), msg, after, pending)
	return s
}

// ThenNoDeadlines expects no deadline to be pending.
func (s *ProcessSpec[S, E]) ThenNoDeadlines() *ProcessSpec[S, E] {
	s.t.Helper()
	s.check()
	if p := s.scheduled(func(es.OutboxMessage) bool { return true }); len(p) > 0 {
		s.t.Fatalf("process spec:%s\nwant no pending deadlines, got %d (first: %s due %v)", s.describe(), len(p), p[0].Type, p[0].DeliverAt)
	}
	return s
}

// ThenError expects handling to fail with an error matching target.
func (s *ProcessSpec[S, E]) ThenError(target error) {
	s.t.Helper()
	if !errors.Is(s.err, target) {
		s.t.Fatalf("process spec:%s\nwant error %v, got %v", s.describe(), target, s.err)
	}
}

// ThenState expects the state of process instance id.
func (s *ProcessSpec[S, E]) ThenState(id string, want S) *ProcessSpec[S, E] {
	s.t.Helper()
	got, err := s.h.State(context.Background(), id)
	if err != nil {
		s.t.Fatalf("process spec: state of %s: %v", id, err)
	}
	if diff := cmp.Diff(want, got, s.opts...); diff != "" {
		s.t.Fatalf("process spec:%s\nstate of %s differs (-want +got):\n%s", s.describe(), id, diff)
	}
	return s
}

func (s *ProcessSpec[S, E]) describe() string {
	out := fmt.Sprintf("\nclock: %s", s.clock.Now().Format(time.RFC3339))
	if len(s.fired) > 0 {
		out += fmt.Sprintf("\ndeadlines fired: %v", s.fired)
	}
	return out
}
