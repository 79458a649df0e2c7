package memory_test

import (
	"context"
	"errors"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
)

func TestConformance(t *testing.T) {
	estest.TestStore(t, func(*testing.T) es.Store { return memory.New(memory.Config{}) })
}

func TestInlineProjectionSeesEveryAppendAtOnce(t *testing.T) {
	ctx := context.Background()
	counts := map[string]int{}
	var refuse bool
	store := memory.New(memory.Config{Inline: []memory.InlineProjection{func(_ context.Context, evs []es.Event) error {
		if refuse {
			return errors.New("read model full")
		}
		for _, e := range evs {
			counts[e.StreamID]++
			if e.Position == 0 || e.Version == 0 {
				return errors.New("event without version or position")
			}
		}
		return nil
	}}})
	ev := func() es.EventData {
		return es.EventData{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(`{}`)}
	}
	if _, err := store.Append(ctx,
		es.StreamAppend{StreamID: "a-1", Expected: es.NoStream, Events: []es.EventData{ev(), ev()}},
		es.StreamAppend{StreamID: "b-1", Expected: es.NoStream, Events: []es.EventData{ev()}}); err != nil {
		t.Fatal(err)
	}
	if counts["a-1"] != 2 || counts["b-1"] != 1 { // read-your-writes: no waiting
		t.Fatalf("counts = %v", counts)
	}
	refuse = true
	if _, err := es.Append(ctx, store, "a-1", es.Exact(2), ev()); err == nil {
		t.Fatal("a refused inline projection did not fail the append")
	}
	if evs, _ := es.Collect(store.ReadAll(ctx, es.AllQuery{})); len(evs) != 3 {
		t.Fatalf("store holds %d events after a refused append, want 3", len(evs))
	}
	refuse = false
	if r, err := es.Append(ctx, store, "a-1", es.Exact(2), ev()); err != nil || r.Version != 3 || r.Position != 4 {
		t.Fatalf("append after a refusal = %+v, %v; want version 3 at position 4", r, err)
	}
}

func TestOutboxConformance(t *testing.T) {
	estest.TestOutbox(t, func(*testing.T) es.Outbox { return memory.New(memory.Config{}) })
}

func TestRelayLease(t *testing.T) {
	// One process: both relays share the one Locker.
	l := memory.NewLocker()
	estest.TestRelayLease(t, memory.New(memory.Config{}), func() es.Locker { return l })
}

func TestRelaySharing(t *testing.T) {
	l := memory.NewLocker()
	// One Locker: its leases exclude each other as those of several would.
	estest.TestRelaySharing(t, memory.New(memory.Config{}), func() es.Locker { return l })
}

func TestObserver(t *testing.T) {
	estest.TestStoreObserver(t, func(_ *testing.T, o es.StoreObserver) es.Store { return memory.New(memory.Config{Observer: o}) })
}

func TestSnapshots(t *testing.T) {
	estest.TestSnapshots(t, func(*testing.T) es.Store { return memory.New(memory.Config{}) })
}

// TestNilInlineProjectionIsAnInvalidConfig: New cannot return an error, so
// every append reports the configuration instead of panicking under the
// store's lock.
func TestNilInlineProjectionIsAnInvalidConfig(t *testing.T) {
	ctx := context.Background()
	store := memory.New(memory.Config{Inline: []memory.InlineProjection{nil}})
	if _, err := es.Append(ctx, store, "s-1", es.AnyVersion, es.EventData{ID: es.NewID(), Type: "T", SchemaVersion: 1, Data: []byte(`{}`)}); !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("Append = %v, want ErrInvalidConfig", err)
	}
	if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{{ID: es.NewID(), Type: "M", SchemaVersion: 1, Data: []byte(`{}`)}}}); !errors.Is(err, es.ErrInvalidConfig) {
		t.Fatalf("AppendEnqueue = %v, want ErrInvalidConfig", err)
	}
	if evs, err := es.Collect(store.ReadAll(ctx, es.AllQuery{})); err != nil || len(evs) != 0 {
		t.Fatalf("read all = %d events, %v; want none", len(evs), err)
	}
}
