package estest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
)

// TestUnreadableEvent checks what a store and a subscription do with a
// stored event the store cannot read back (written by another tool, by
// hand or by an older writer). newStore returns an empty store and a
// function that stores, by the store's own means (raw SQL, say), an event
// that cannot be read at the given version of the stream, after the
// events already there.
//
// Reads must yield the events before the bad one and then an error that
// wraps [es.ErrUnreadableEvent] and names the event's position; a
// subscription must handle the events before it and then stop with that
// error rather than skip it.
func TestUnreadableEvent(t *testing.T, newStore func(t *testing.T) (es.Store, func(streamID string, version int64))) {
	s, corrupt := newStore(t)
	ctx := context.Background()
	mustAppend(t, s, "meter-1", es.NoStream, events("Read", 3)...)
	corrupt("meter-1", 4)
	mustAppend(t, s, "meter-1", es.Exact(4), event("Read", 5))

	for name, read := range map[string]func() ([]es.Event, error){
		"ReadAll":    func() ([]es.Event, error) { return es.Collect(s.ReadAll(ctx, es.AllQuery{})) },
		"ReadStream": func() ([]es.Event, error) { return es.Collect(s.ReadStream(ctx, "meter-1", es.StreamQuery{})) },
	} {
		got, err := read()
		// A store may hold the log back for a while (PostgreSQL waits for
		// transactions in flight elsewhere): read again until it gets as
		// far as the bad event.
		for deadline := time.Now().Add(20 * time.Second); err == nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			got, err = read()
		}
		if len(got) != 3 || !errors.Is(err, es.ErrUnreadableEvent) {
			t.Fatalf("%s: %d events and %v, want the 3 before the bad one and ErrUnreadableEvent", name, len(got), err)
		}
		if pos := got[2].Position + 1; !strings.Contains(err.Error(), fmt.Sprint("position ", pos)) {
			t.Errorf("%s: error %q does not name position %d", name, err, pos)
		}
	}

	handled := 0
	sub := es.NewSubscription("meter", s, es.AtLeastOnce("meter", &checkpoints{}, func(context.Context, es.Event) error {
		handled++
		return nil
	}), es.SubscriptionConfig{MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, PollInterval: 10 * time.Millisecond})
	rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := sub.Run(rctx); !errors.Is(err, es.ErrUnreadableEvent) || rctx.Err() != nil {
		t.Fatalf("subscription Run = %v, want it to stop with ErrUnreadableEvent", err)
	}
	if handled != 3 {
		t.Fatalf("subscription handled %d events, want the 3 before the bad one", handled)
	}
}

// checkpoints is an in-memory es.CheckpointStore.
type checkpoints struct{ m map[string]int64 }

func (c *checkpoints) LoadCheckpoint(_ context.Context, name string) (int64, error) {
	return c.m[name], nil
}

func (c *checkpoints) SaveCheckpoint(_ context.Context, name string, position int64) error {
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[name] = position
	return nil
}
