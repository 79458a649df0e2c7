package estest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"esgo.dev/es"
)

// ReadModel is what a projection spec drives: something that handles stored
// events in order and shows a view of what it built. A read model that
// writes SQL tables implements it with a small adapter whose View queries
// the tables.
type ReadModel[V any] interface {
	HandleEvent(ctx context.Context, e es.Event) error
	View(ctx context.Context) (V, error)
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
// [Projection].
type ProjectionSpec[V any] struct {
	t        testing.TB
	reg      *es.Registry
	rm       ReadModel[V]
	opts     []cmp.Option
	given    []es.Event
	versions map[string]int64
	twice    bool
}

// Projection starts a spec for the read model rm; events are encoded with
// reg. Views are compared with go-cmp, nil and empty equal, plus opts.
func Projection[V any](t testing.TB, reg *es.Registry, rm ReadModel[V], opts ...cmp.Option) *ProjectionSpec[V] {
	return &ProjectionSpec[V]{t: t, reg: reg, rm: rm, versions: make(map[string]int64),
		opts: append([]cmp.Option{cmpopts.EquateEmpty()}, opts...)}
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
		s.t.Fatalf("projection spec: given %#v: %v", ev, err)
	}
	s.versions[streamID]++
	s.given = append(s.given, es.Event{
		ID: d.ID, StreamID: streamID, Version: s.versions[streamID], Position: int64(len(s.given) + 1),
		Type: d.Type, SchemaVersion: d.SchemaVersion, Data: d.Data, Metadata: md,
		RecordedAt: time.Date(2026, 1, 1, 0, 0, len(s.given), 0, time.UTC),
	})
}

// DeliveredTwice makes the spec hand every event to the read model twice in
// a row, as an at-least-once subscription may after a crash. The view must
// come out the same.
func (s *ProjectionSpec[V]) DeliveredTwice() *ProjectionSpec[V] {
	s.twice = true
	return s
}

// Then feeds the given events to the read model and expects its view to
// equal want.
func (s *ProjectionSpec[V]) Then(want V) {
	s.t.Helper()
	ctx := context.Background()
	for _, e := range s.given {
		for range 1 + btoi(s.twice) {
			if err := s.rm.HandleEvent(ctx, e); err != nil {
				s.t.Fatalf("projection spec: handle %s %s (stream %s, version %d): %v", e.Type, e.Data, e.StreamID, e.Version, err)
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
	if s.twice {
		return fmt.Sprintf(" (%d events, each delivered twice)", len(s.given))
	}
	return fmt.Sprintf(" (%d events)", len(s.given))
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
