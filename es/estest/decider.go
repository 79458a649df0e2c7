package estest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"esgo.dev/es"
)

// DeciderSpecs makes the given/when/then specs of one [es.Decider]. It holds
// no test, so a test file builds it once, at package level, and starts a
// spec in each test:
//
//	var spec = estest.ForDecider(pool)
//
//	func TestCannotReserveMoreSeatsThanAreFree(t *testing.T) {
//		spec.Given(t, SeatsAdded{Seats: 10}).
//			When(Reserve{ReservationID: "r-1", Seats: 11}).
//			ThenError(ErrSoldOut)
//	}
type DeciderSpecs[S, C, E any] struct {
	d    es.Decider[S, C, E]
	opts []cmp.Option
}

// ForDecider returns the specs of d. Events and states are compared with
// go-cmp, treating nil and empty slices and maps as equal; opts add to that
// (cmpopts.IgnoreFields, cmp.AllowUnexported, ...). A decider without
// Initial, Decide or Evolve panics here, where the mistake is.
func ForDecider[S, C, E any](d es.Decider[S, C, E], opts ...cmp.Option) DeciderSpecs[S, C, E] {
	if d.Initial == nil || d.Decide == nil || d.Evolve == nil {
		panic("estest: ForDecider: the decider needs Initial, Decide and Evolve")
	}
	return DeciderSpecs[S, C, E]{d: d, opts: append([]cmp.Option{cmpopts.EquateEmpty()}, opts...)}
}

// Given starts a spec in t with the events already in the stream (none is
// a new stream). The spec must end with one of its Then methods: one that
// does not fails t when t ends.
func (f DeciderSpecs[S, C, E]) Given(t testing.TB, events ...E) *DeciderSpec[S, C, E] {
	t.Helper()
	if f.d.Decide == nil {
		t.Fatalf("decider spec: the DeciderSpecs was not made with estest.ForDecider")
	}
	return &DeciderSpec[S, C, E]{t: t, d: f.d, opts: f.opts, given: slices.Clone(events),
		end: startSpec(t, "decider spec", "Then, ThenState, ThenNothing, ThenError, ThenErrorAs or ThenErrorMatches", 1)}
}

// DeciderSpec is one given/when/then spec of an [es.Decider], started by
// [DeciderSpecs.Given]. Failures show the given events, the command and a
// go-cmp diff (-want +got).
type DeciderSpec[S, C, E any] struct {
	t       testing.TB
	d       es.Decider[S, C, E]
	opts    []cmp.Option
	given   []E
	cmd     C
	hasWhen bool
	end     *ending
}

// When sets the command under test.
func (s *DeciderSpec[S, C, E]) When(cmd C) *DeciderSpec[S, C, E] {
	s.t.Helper()
	if s.hasWhen {
		s.t.Fatalf("decider spec:%s\nWhen called twice: one spec checks one command", s.describe())
	}
	s.cmd, s.hasWhen = cmd, true
	return s
}

// decide ends the spec and runs the command.
func (s *DeciderSpec[S, C, E]) decide() ([]E, error) {
	s.t.Helper()
	s.end.close()
	if !s.hasWhen {
		s.t.Fatalf("decider spec: no When(command)")
	}
	return s.d.Decide(s.d.Fold(s.given...), s.cmd)
}

// Then expects the command to produce exactly these events.
func (s *DeciderSpec[S, C, E]) Then(want ...E) {
	s.t.Helper()
	got, err := s.decide()
	if err != nil {
		s.t.Fatalf("decider spec:%s\nwant events, got error: %v", s.describe(), err)
		return
	}
	if diff := cmp.Diff(want, got, s.opts...); diff != "" {
		s.t.Fatalf("decider spec:%s\nevents differ (-want +got):\n%s", s.describe(), diff)
	}
}

// ThenState expects the command to succeed and leave the stream in state
// want.
func (s *DeciderSpec[S, C, E]) ThenState(want S) {
	s.t.Helper()
	got, err := s.decide()
	if err != nil {
		s.t.Fatalf("decider spec:%s\nwant a new state, got error: %v", s.describe(), err)
		return
	}
	state := s.d.Fold(append(slices.Clone(s.given), got...)...)
	if diff := cmp.Diff(want, state, s.opts...); diff != "" {
		s.t.Fatalf("decider spec:%s\nstate differs (-want +got):\n%s", s.describe(), diff)
	}
}

// ThenNothing expects the command to succeed without producing events: it
// was already done, or asks for no change.
func (s *DeciderSpec[S, C, E]) ThenNothing() {
	s.t.Helper()
	got, err := s.decide()
	switch {
	case err != nil:
		s.t.Fatalf("decider spec:%s\nwant no events, got error: %v", s.describe(), err)
	case len(got) > 0:
		s.t.Fatalf("decider spec:%s\nwant no events, got:\n%s", s.describe(), pretty(got))
	}
}

// ThenError expects the command to be refused with an error that
// errors.Is finds target in.
func (s *DeciderSpec[S, C, E]) ThenError(target error) {
	s.t.Helper()
	if target == nil {
		s.end.close()
		s.t.Fatalf("decider spec: ThenError(nil): to expect success, use Then, ThenState or ThenNothing")
	}
	s.thenError(errorIs(target))
}

// ThenErrorAs expects the command to be refused with an error that
// errors.As finds in it and sets target to, for errors that carry data:
// check the fields of *target afterwards. target is a non-nil pointer to
// an interface or to a type that implements error, as for errors.As.
func (s *DeciderSpec[S, C, E]) ThenErrorAs(target any) {
	s.t.Helper()
	want, err := errorAs(target)
	if err != nil {
		s.end.close()
		s.t.Fatalf("decider spec: %v", err)
	}
	s.thenError(want)
}

// ThenErrorMatches expects the command to be refused with an error for
// which match reports true, for errors neither errors.Is nor errors.As
// describe.
func (s *DeciderSpec[S, C, E]) ThenErrorMatches(match func(error) bool) {
	s.t.Helper()
	if match == nil {
		s.end.close()
		s.t.Fatalf("decider spec: ThenErrorMatches(nil)")
	}
	s.thenError(errorMatching(match))
}

func (s *DeciderSpec[S, C, E]) thenError(want errorWant) {
	s.t.Helper()
	got, err := s.decide()
	switch {
	case err == nil:
		s.t.Fatalf("decider spec:%s\nwant error %s, got events:\n%s", s.describe(), want.desc, pretty(got))
	case !want.match(err):
		s.t.Fatalf("decider spec:%s\nwant error %s, got error %v", s.describe(), want.desc, err)
	}
}

func (s *DeciderSpec[S, C, E]) describe() string {
	when := "(no command)"
	if s.hasWhen {
		when = fmt.Sprintf("%#v", s.cmd)
	}
	return fmt.Sprintf("\ngiven: %s\nwhen:  %s", pretty(s.given), when)
}

func pretty[E any](events []E) string {
	if len(events) == 0 {
		return "(no events)"
	}
	out := ""
	for i, e := range events {
		if i > 0 {
			out += "\n       "
		}
		out += fmt.Sprintf("%#v", e)
	}
	return out
}
