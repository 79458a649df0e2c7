package estest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"esgo.dev/es"
)

// DeciderSpec is a given/when/then spec for an [es.Decider]. Make one with
// [Decider]; end it with one of the Then methods.
type DeciderSpec[S, C, E any] struct {
	t       testing.TB
	d       es.Decider[S, C, E]
	opts    []cmp.Option
	given   []E
	cmd     C
	hasWhen bool
}

// Decider starts a spec for d. Events and states are compared with go-cmp,
// treating nil and empty slices and maps as equal; opts add to that (for
// example cmpopts.IgnoreFields, or cmp.AllowUnexported).
func Decider[S, C, E any](t testing.TB, d es.Decider[S, C, E], opts ...cmp.Option) *DeciderSpec[S, C, E] {
	return &DeciderSpec[S, C, E]{t: t, d: d, opts: append([]cmp.Option{cmpopts.EquateEmpty()}, opts...)}
}

// Given sets the events already in the stream.
func (s *DeciderSpec[S, C, E]) Given(events ...E) *DeciderSpec[S, C, E] {
	s.given = append(s.given, events...)
	return s
}

// When sets the command under test.
func (s *DeciderSpec[S, C, E]) When(cmd C) *DeciderSpec[S, C, E] {
	s.cmd, s.hasWhen = cmd, true
	return s
}

func (s *DeciderSpec[S, C, E]) decide() ([]E, error) {
	s.t.Helper()
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

// ThenState expects the command to succeed and leave the stream in state want.
func (s *DeciderSpec[S, C, E]) ThenState(want S) {
	s.t.Helper()
	got, err := s.decide()
	if err != nil {
		s.t.Fatalf("decider spec:%s\nwant a new state, got error: %v", s.describe(), err)
		return
	}
	state := s.d.Fold(append(append([]E(nil), s.given...), got...)...)
	if diff := cmp.Diff(want, state, s.opts...); diff != "" {
		s.t.Fatalf("decider spec:%s\nstate differs (-want +got):\n%s", s.describe(), diff)
	}
}

// ThenError expects the command to be refused with an error that matches
// target (errors.Is).
func (s *DeciderSpec[S, C, E]) ThenError(target error) {
	s.t.Helper()
	got, err := s.decide()
	switch {
	case err == nil:
		s.t.Fatalf("decider spec:%s\nwant error %v, got events:\n%s", s.describe(), target, pretty(got))
	case !errors.Is(err, target):
		s.t.Fatalf("decider spec:%s\nwant error %v, got error %v", s.describe(), target, err)
	}
}

// ThenNothing expects the command to succeed without producing events.
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

func (s *DeciderSpec[S, C, E]) describe() string {
	return fmt.Sprintf("\ngiven: %s\nwhen:  %#v", pretty(s.given), s.cmd)
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
