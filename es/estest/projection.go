package estest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"esgo.dev/es"
)

// ReadModel is what a projection spec drives: something that handles stored
// events in order and shows a view of what it built. A read model that
// writes SQL tables implements it with a small adapter whose View queries
// the tables (esgo.dev/es/sqlite/sqlitetest and esgo.dev/es/postgres/pgtest
// have one).
//
// HandleEvent is what the read model's subscription calls. When it goes
// through a checkpoint that skips events already applied, the read model
// should also implement [Reapplier], or [ProjectionSpec.AppliedTwice] checks
// that checkpoint instead of the projection's own code.
type ReadModel[V any] interface {
	HandleEvent(ctx context.Context, e es.Event) error
	View(ctx context.Context) (V, error)
}

// Reapplier is the optional interface of a [ReadModel] whose HandleEvent
// skips events at or below a checkpoint, as the SQL projection consumers
// do: they commit the checkpoint with the changes, so a redelivered event
// never reaches the projection's code. ReapplyEvent runs that code on e
// once more, bypassing the checkpoint, as a consumer that commits its
// checkpoint after its changes would after a crash between the two.
// [ProjectionSpec.AppliedTwice] finds it by type assertion.
type Reapplier interface {
	ReapplyEvent(ctx context.Context, e es.Event) error
}

// Fold adapts a pure fold over decoded events into a [ReadModel]: the view
// starts as initial and each event is decoded with reg and applied.
func Fold[V any](reg *es.Registry, initial V, apply func(view V, e es.Event, event any) V) ReadModel[V] {
	return &fold[V]{reg: reg, view: initial, apply: apply}
}

type fold[V any] struct {
	reg   *es.Registry
	view  V
	apply func(V, es.Event, any) V
}

func (f *fold[V]) HandleEvent(_ context.Context, e es.Event) error {
	v, err := f.reg.Decode(e)
	if err != nil {
		return err
	}
	f.view = f.apply(f.view, e, v)
	return nil
}

func (f *fold[V]) View(context.Context) (V, error) { return f.view, nil }

// Given is a stream's worth of events for a projection spec; see [InStream].
type Given struct {
	StreamID string
	Events   []any
	Metadata es.Metadata
}

// InStream places events in stream streamID. Events passed to
// [ProjectionSpec.Given] without it go to stream "test-1".
func InStream(streamID string, events ...any) Given {
	return Given{StreamID: streamID, Events: events}
}

// ProjectionSpec is a given/then spec for a read model. Make one with
// [Projection]. By default each event is handled once;
// [ProjectionSpec.Redelivered] and [ProjectionSpec.AppliedTwice] check the
// two ways an event can come round again.
type ProjectionSpec[V any] struct {
	t           testing.TB
	reg         *es.Registry
	rm          ReadModel[V]
	opts        []cmp.Option
	given       []es.Event
	versions    map[string]int64
	redelivered bool
	twice       bool
	end         *ending
}

// Projection starts a spec in t for the read model rm, which is usually
// new and empty; events are encoded with reg. Views are compared with
// go-cmp, nil and empty equal, plus opts. The spec must end with
// [ProjectionSpec.Then]: one that does not fails t when t ends.
func Projection[V any](t testing.TB, reg *es.Registry, rm ReadModel[V], opts ...cmp.Option) *ProjectionSpec[V] {
	t.Helper()
	return &ProjectionSpec[V]{t: t, reg: reg, rm: rm, versions: make(map[string]int64),
		opts: append([]cmp.Option{cmpopts.EquateEmpty()}, opts...),
		end:  startSpec(t, "projection spec", "Then", 1)}
}

// Given adds events, in order. Each argument is an event value (stored in
// stream "test-1"), a [Given] from [InStream], or an es.Event used as it
// is. Stream versions and global positions are assigned in order.
func (s *ProjectionSpec[V]) Given(events ...any) *ProjectionSpec[V] {
	s.t.Helper()
	for _, e := range events {
		switch e := e.(type) {
		case es.Event:
			s.given = append(s.given, e)
		case Given:
			for _, ev := range e.Events {
				s.add(e.StreamID, ev, e.Metadata)
			}
		default:
			s.add("test-1", e, es.Metadata{})
		}
	}
	return s
}

func (s *ProjectionSpec[V]) add(streamID string, ev any, md es.Metadata) {
	s.t.Helper()
	d, err := s.reg.Encode(ev)
	if err != nil {
		s.end.close()
		s.t.Fatalf("projection spec: given %#v: %v", ev, err)
	}
	s.versions[streamID]++
	s.given = append(s.given, es.Event{
		ID: d.ID, StreamID: streamID, Version: s.versions[streamID], Position: int64(len(s.given) + 1),
		Type: d.Type, SchemaVersion: d.SchemaVersion, Data: d.Data, Metadata: md,
		RecordedAt: time.Date(2026, 1, 1, 0, 0, len(s.given), 0, time.UTC),
	})
}

// Redelivered hands every event to the read model's HandleEvent a second
// time, right after the first, as a subscription does when it retries a
// batch whose commit it did not see acknowledged. It checks the delivery
// path: a SQL read model's consumer, which commits its checkpoint with its
// changes, must skip the repeat. It says nothing about the projection's
// own code when a checkpoint skips the repeat; [ProjectionSpec.AppliedTwice]
// does.
func (s *ProjectionSpec[V]) Redelivered() *ProjectionSpec[V] {
	s.redelivered = true
	return s
}

// AppliedTwice runs the read model's own handling code on every event a
// second time, right after the first, bypassing any checkpoint (through
// [Reapplier], or HandleEvent again for a read model without one), as a
// consumer that commits its checkpoint after its changes does after a
// crash between the two. The view must come out as if each event had been
// applied once: the projection is idempotent, as an at-least-once
// consumer needs it to be.
func (s *ProjectionSpec[V]) AppliedTwice() *ProjectionSpec[V] {
	s.twice = true
	return s
}

// Then feeds the given events to the read model and expects its view to
// equal want.
func (s *ProjectionSpec[V]) Then(want V) {
	s.t.Helper()
	s.end.close()
	ctx := context.Background()
	reapply := s.rm.HandleEvent
	if r, ok := s.rm.(Reapplier); ok {
		reapply = r.ReapplyEvent
	}
	for _, e := range s.given {
		steps := []func(context.Context, es.Event) error{s.rm.HandleEvent}
		if s.redelivered {
			steps = append(steps, s.rm.HandleEvent)
		}
		if s.twice {
			steps = append(steps, reapply)
		}
		for _, handle := range steps {
			if err := handle(ctx, e); err != nil {
				s.t.Fatalf("projection spec%s: handle %s %s (stream %s, version %d): %v",
					s.describeDelivery(), e.Type, e.Data, e.StreamID, e.Version, err)
			}
		}
	}
	got, err := s.rm.View(ctx)
	if err != nil {
		s.t.Fatalf("projection spec: view: %v", err)
	}
	if diff := cmp.Diff(want, got, s.opts...); diff != "" {
		s.t.Fatalf("projection spec%s: view differs (-want +got):\n%s", s.describeDelivery(), diff)
	}
}

func (s *ProjectionSpec[V]) describeDelivery() string {
	var how []string
	if s.redelivered {
		how = append(how, "each redelivered to HandleEvent")
	}
	if s.twice {
		how = append(how, "each applied twice, bypassing any checkpoint")
	}
	if len(how) == 0 {
		return fmt.Sprintf(" (%d events)", len(s.given))
	}
	return fmt.Sprintf(" (%d events, %s)", len(s.given), strings.Join(how, ", "))
}
