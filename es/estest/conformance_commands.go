package estest

import (
	"context"
	"errors"
	"testing"

	"esgo.dev/es"
)

// counterEvent and counterNext make a decider whose decision depends on
// the state: the number it appends is one above the stream's version.
type counterEvent struct {
	N int64 `json:"n"`
}

type counterNext struct{}

func counterDecider() es.Decider[int64, counterNext, counterEvent] {
	return es.Decider[int64, counterNext, counterEvent]{
		Initial: func() int64 { return 0 },
		Decide: func(n int64, _ counterNext) ([]counterEvent, error) {
			return []counterEvent{{N: n + 1}}, nil
		},
		Evolve: func(_ int64, e counterEvent) int64 { return e.N },
	}
}

// testCommandRepeatRace holds this interleaving of two handlings, B and
// A, of one command, whose decision depends on the state: B loads the
// stream at version 2 and decides; another command moves the stream to 4;
// A loads version 4, decides differently and commits; then B appends. The
// store refuses B's events (their IDs are stored with other data), and B
// must answer with A's stored outcome, marked Repeated — never an error.
func testCommandRepeatRace(t *testing.T, s es.Store) {
	ctx := context.Background()
	reg := es.NewRegistry()
	es.MustRegister[counterEvent](reg, "estest.Counted")
	ps := newMSPausing(s)
	h := es.NewCommandHandler(ps.store(), reg, counterDecider(), es.HandlerConfig{})
	for range 2 {
		if _, err := h.Handle(ctx, "", "counter-1", counterNext{}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := es.NewID()
	var a es.Result[int64, counterEvent]
	var aErr error
	ps.before(func() { // B has decided N=3 on version 2 and is about to append
		for range 2 {
			if _, err := h.Handle(ctx, "", "counter-1", counterNext{}); err != nil {
				t.Error(err)
			}
		}
		a, aErr = h.Handle(ctx, cmd, "counter-1", counterNext{}) // A decides N=5
	})
	b, err := h.Handle(ctx, cmd, "counter-1", counterNext{})
	if aErr != nil || a.Repeated || len(a.Events) != 1 || a.Events[0].N != 5 {
		t.Fatalf("handling A = %+v, %v; want N=5 appended", a, aErr)
	}
	if err != nil || !b.Repeated || len(b.Events) != 1 || b.Events[0].N != 5 || b.Version != a.Version {
		t.Fatalf("handling B = %+v, %v; want A's outcome (N=5 at version %d) marked Repeated", b, err, a.Version)
	}
	if evs := readStream(t, s, "counter-1", es.StreamQuery{}); len(evs) != 5 {
		t.Fatalf("stream has %d events, want 5", len(evs))
	}
	// Reusing the command ID on another stream is not a repeat: its event
	// IDs are taken, and the error says so.
	if _, err := h.Handle(ctx, cmd, "counter-2", counterNext{}); !errors.Is(err, es.ErrDuplicateEventID) {
		t.Fatalf("command ID reused on another stream: %v, want ErrDuplicateEventID", err)
	}
}
