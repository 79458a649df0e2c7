package estest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
)

// TestStoreObserver checks that a store reports every append to its
// [es.StoreObserver], exactly once per call, on every path out of Append:
// a successful append with the number of events written, a conflict, an
// invalid append, and a repeat (which writes nothing). newStore must
// return an empty store that reports to o.
func TestStoreObserver(t *testing.T, newStore func(t *testing.T, o es.StoreObserver) es.Store) {
	o := &appendRecorder{}
	s := newStore(t, o)
	ctx := context.Background()
	evs := events("Read", 3)
	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, evs...); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, event("Read", 4)); !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("got %v, want a conflict", err)
	}
	if _, err := es.Append(ctx, s, "", es.AnyVersion, event("Read", 5)); !errors.Is(err, es.ErrInvalidAppend) {
		t.Fatalf("got %v, want an invalid append", err)
	}
	if _, err := es.Append(ctx, s, "meter-1", es.NoStream, evs...); err != nil {
		t.Fatalf("repeat: %v", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.calls) != 4 {
		t.Fatalf("observed %d appends, want 4: %+v", len(o.calls), o.calls)
	}
	want := []struct {
		events int
		is     error
	}{{3, nil}, {0, es.ErrConcurrency}, {0, es.ErrInvalidAppend}, {0, nil}}
	for i, c := range o.calls {
		if c.events != want[i].events || (want[i].is == nil) != (c.err == nil) || (want[i].is != nil && !errors.Is(c.err, want[i].is)) {
			t.Errorf("append %d observed as (%d events, %v), want (%d events, %v)", i+1, c.events, c.err, want[i].events, want[i].is)
		}
		if c.took <= 0 {
			t.Errorf("append %d observed with duration %v", i+1, c.took)
		}
	}
}

type appendCall struct {
	events int
	took   time.Duration
	err    error
}

type appendRecorder struct {
	mu    sync.Mutex
	calls []appendCall
}

func (r *appendRecorder) ObserveAppend(events int, took time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, appendCall{events, took, err})
}
