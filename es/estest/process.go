package estest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// ProcessSpecs makes the given/when/then specs of one [es.ProcessManager].
// Like [DeciderSpecs] it holds no test: build it once per test file,
//
//	var spec = estest.ForProcess(reg, holds)
//
// and start a spec in each test with [ProcessSpecs.Given].
type ProcessSpecs[S, E any] struct {
	reg  *es.Registry
	pm   es.ProcessManager[S, E]
	opts []cmp.Option
}

// ForProcess returns the specs of pm, whose messages and events are
// registered in reg. Messages and states are compared with go-cmp, nil and
// empty equal, plus opts.
func ForProcess[S, E any](reg *es.Registry, pm es.ProcessManager[S, E], opts ...cmp.Option) ProcessSpecs[S, E] {
	if reg == nil {
		panic("estest: ForProcess: nil registry")
	}
	return ProcessSpecs[S, E]{reg: reg, pm: pm, opts: append([]cmp.Option{cmpopts.EquateEmpty()}, opts...)}
}

// Given starts a spec in t on a fresh in-memory store, with a clock at
// 2026-01-01 09:00 UTC, and handles msgs, the history (none for a process
// that has seen nothing). What the history sends is forgotten; the
// deadlines it sets stay scheduled. Each When… of the spec must be checked
// by a Then…: one that is not fails t when t ends.
func (f ProcessSpecs[S, E]) Given(t testing.TB, msgs ...any) *ProcessSpec[S, E] {
	t.Helper()
	if f.reg == nil {
		t.Fatalf("process spec: the ProcessSpecs was not made with estest.ForProcess")
	}
	s := &ProcessSpec[S, E]{
		t: t, reg: f.reg, store: memory.New(memory.Config{}), clock: NewFakeClock(processStart()),
		opts: f.opts, seen: map[int64]bool{},
		end: startSpec(t, "process spec", "Then, ThenNothingSent, ThenScheduled, ThenNoDeadlines, ThenState, ThenError, ThenErrorAs or ThenErrorMatches", 1),
	}
	for b := range es.OutboxBuckets {
		s.buckets = append(s.buckets, b)
	}
	s.h = es.NewProcessHandler(s.store, f.reg, f.pm, es.ProcessConfig{Clock: s.clock})
	for _, m := range msgs {
		if err := s.handle(m); err != nil {
			s.t.Fatalf("process spec: given %#v: %v", m, err)
		}
	}
	s.sent = nil
	return s
}

// ProcessSpec is one given/when/then spec of an [es.ProcessManager],
// started by [ProcessSpecs.Given]. It runs the real [es.ProcessHandler]
// over an in-memory outbox with a fake clock, so deadlines fire when the
// spec moves the clock, without sleeping. A spec may check several
// actions in turn: each When… is followed by the Then… that check it.
type ProcessSpec[S, E any] struct {
	t       testing.TB
	reg     *es.Registry
	h       *es.ProcessHandler[S, E]
	store   *memory.Store
	clock   *FakeClock
	opts    []cmp.Option
	seen    map[int64]bool
	sent    []es.Message // sent by the last action
	err     error
	acted   bool
	fired   []string // types of deadlines fired by WhenTimeElapses
	buckets []int
	end     *ending
}

// processStart is when the clock of a ProcessSpec starts.
func processStart() time.Time { return time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC) }

// Clock returns the spec's clock.
func (s *ProcessSpec[S, E]) Clock() *FakeClock { return s.clock }

// When handles the message under test. The Then… that follow check what
// it did.
func (s *ProcessSpec[S, E]) When(msg any) *ProcessSpec[S, E] {
	s.t.Helper()
	s.act(fmt.Sprintf("When(%T)", msg))
	s.err = s.handle(msg)
	return s
}

// WhenTimeElapses moves the clock by d and delivers, in time order, the
// deadlines that fall due, as the relay would. The Then… that follow check
// what they did.
func (s *ProcessSpec[S, E]) WhenTimeElapses(d time.Duration) *ProcessSpec[S, E] {
	s.t.Helper()
	s.act(fmt.Sprintf("WhenTimeElapses(%v)", d))
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

// act starts an action: what it sends and fires replaces the last one's,
// and a Then… must check it.
func (s *ProcessSpec[S, E]) act(what string) {
	if s.acted && !s.end.done {
		s.t.Fatalf("process spec: %s follows %s at %s, which no Then… checked", what, s.end.what, s.end.where)
	}
	s.end.open(what, 2)
	s.acted, s.sent, s.fired, s.err = true, nil, nil, nil
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

// checked marks the last action checked and expects it to have succeeded.
func (s *ProcessSpec[S, E]) checked() {
	s.t.Helper()
	s.end.close()
	if !s.acted {
		s.t.Fatalf("process spec: no When(message) or WhenTimeElapses(duration)")
	}
	if s.err != nil {
		s.t.Fatalf("process spec:%s\nwant a reaction, got error: %v", s.describe(), s.err)
	}
}

// Then expects the last action to have sent exactly these messages
// (commands or integration events for delivery now, not deadlines), in
// this order.
func (s *ProcessSpec[S, E]) Then(want ...any) *ProcessSpec[S, E] {
	s.t.Helper()
	s.checked()
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

// ThenNothingSent expects the last action to have succeeded without
// sending a message for delivery now. That is all it checks: the events
// the process recorded and the deadlines it scheduled or cancelled are
// for [ProcessSpec.ThenState], [ProcessSpec.ThenScheduled] and
// [ProcessSpec.ThenNoDeadlines].
func (s *ProcessSpec[S, E]) ThenNothingSent() *ProcessSpec[S, E] {
	s.t.Helper()
	return s.Then()
}

// ThenScheduled expects a deadline msg to be pending, due after from the
// spec's current time.
func (s *ProcessSpec[S, E]) ThenScheduled(after time.Duration, msg any) *ProcessSpec[S, E] {
	s.t.Helper()
	s.checked()
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
	s.checked()
	if p := s.scheduled(func(es.OutboxMessage) bool { return true }); len(p) > 0 {
		s.t.Fatalf("process spec:%s\nwant no pending deadlines, got %d (first: %s due %v)", s.describe(), len(p), p[0].Type, p[0].DeliverAt)
	}
	return s
}

// ThenState expects the state of process instance id. Right after Given
// it checks the state the history left.
func (s *ProcessSpec[S, E]) ThenState(id string, want S) *ProcessSpec[S, E] {
	s.t.Helper()
	if s.acted {
		s.checked()
	}
	s.end.close()
	got, err := s.h.State(context.Background(), id)
	if err != nil {
		s.t.Fatalf("process spec: state of %s: %v", id, err)
	}
	if diff := cmp.Diff(want, got, s.opts...); diff != "" {
		s.t.Fatalf("process spec:%s\nstate of %s differs (-want +got):\n%s", s.describe(), id, diff)
	}
	return s
}

// ThenError expects the last action to have failed with an error that
// errors.Is finds target in.
func (s *ProcessSpec[S, E]) ThenError(target error) {
	s.t.Helper()
	if target == nil {
		s.end.close()
		s.t.Fatalf("process spec: ThenError(nil): to expect success, use Then or ThenNothingSent")
	}
	s.thenError(errorIs(target))
}

// ThenErrorAs expects the last action to have failed with an error that
// errors.As finds in it and sets target to; target is as for errors.As.
func (s *ProcessSpec[S, E]) ThenErrorAs(target any) {
	s.t.Helper()
	want, err := errorAs(target)
	if err != nil {
		s.end.close()
		s.t.Fatalf("process spec: %v", err)
	}
	s.thenError(want)
}

// ThenErrorMatches expects the last action to have failed with an error
// for which match reports true.
func (s *ProcessSpec[S, E]) ThenErrorMatches(match func(error) bool) {
	s.t.Helper()
	if match == nil {
		s.end.close()
		s.t.Fatalf("process spec: ThenErrorMatches(nil)")
	}
	s.thenError(errorMatching(match))
}

func (s *ProcessSpec[S, E]) thenError(want errorWant) {
	s.t.Helper()
	s.end.close()
	switch {
	case !s.acted:
		s.t.Fatalf("process spec: no When(message) or WhenTimeElapses(duration)")
	case s.err == nil:
		s.t.Fatalf("process spec:%s\nwant error %s, got none", s.describe(), want.desc)
	case !want.match(s.err):
		s.t.Fatalf("process spec:%s\nwant error %s, got error %v", s.describe(), want.desc, s.err)
	}
}

func (s *ProcessSpec[S, E]) describe() string {
	out := fmt.Sprintf("\nclock: %s", s.clock.Now().Format(time.RFC3339))
	if s.acted {
		out += "\nafter: " + s.end.what
	}
	if len(s.fired) > 0 {
		out += fmt.Sprintf("\ndeadlines fired: %v", s.fired)
	}
	return out
}
