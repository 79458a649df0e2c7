package estest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
)

// TestRelayLease checks that relays sharing one lease (their Locker is
// not an [es.TryLocker]: newLocker's Lockers are wrapped so that they do
// not look like one) keep one active worker per bucket whatever their
// Workers settings: relays with 2 and 4
// workers (a rolling deploy that changes the setting) run side by side
// over one outbox, each with its own Locker from newLocker (as two
// processes would have), and the first is stopped half-way so that the
// second takes over. Every message must be delivered exactly once, no two
// deliveries of one key may overlap, and the two relays must never deliver
// at the same moment. o must be empty.
func TestRelayLease(t *testing.T, o es.Outbox, newLocker func() es.Locker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const keys, perKey = 40, 10
	total := keys * perKey
	for n := range perKey {
		var msgs []es.Message
		for k := range keys {
			msgs = append(msgs, msgOf(fmt.Sprintf("order-%d", k), n))
		}
		mustEnqueue(t, o, es.Enqueue{Messages: msgs})
	}

	var (
		mu        sync.Mutex
		delivered = map[string]int{}    // message ID -> deliveries
		busyKey   = map[string]string{} // key -> relay delivering it now
		busyRelay = map[string]int{}    // relay -> deliveries in flight
		faults    []string
		halfway   = make(chan struct{})
		all       = make(chan struct{})
	)
	publisher := func(relay string) es.Publisher {
		return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
			mu.Lock()
			if other, ok := busyKey[m.Key]; ok {
				faults = append(faults, fmt.Sprintf("key %s delivered by %s while %s was delivering it", m.Key, relay, other))
			}
			for r, n := range busyRelay {
				if r != relay && n > 0 {
					faults = append(faults, fmt.Sprintf("relay %s delivered %s while relay %s was delivering", relay, m.ID, r))
				}
			}
			busyKey[m.Key] = relay
			busyRelay[relay]++
			mu.Unlock()
			// A delivery takes a while, so that overlaps have time to show.
			time.Sleep(200 * time.Microsecond)
			mu.Lock()
			defer mu.Unlock()
			delete(busyKey, m.Key)
			busyRelay[relay]--
			delivered[m.ID]++
			if delivered[m.ID] > 1 {
				return nil
			}
			switch len(delivered) {
			case total / 2:
				close(halfway)
			case total:
				close(all)
			}
			return nil
		})
	}
	run := func(ctx context.Context, name string, workers int) <-chan error {
		done := make(chan error, 1)
		cfg := es.RelayConfig{Workers: workers, Locker: lockOnly{newLocker()}, PollInterval: 5 * time.Millisecond,
			Logger: slog.New(slog.DiscardHandler)}
		go func() { done <- es.NewRelay(o, publisher(name), cfg).Run(ctx) }()
		return done
	}
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	doneA := run(ctxA, "A", 2)
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	doneB := run(ctxB, "B", 4)

	wait := func(ch <-chan struct{}, what string) {
		select {
		case <-ch:
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("%s: only %d of %d messages delivered", what, len(delivered), total)
		}
	}
	wait(halfway, "half-way")
	// Stop A: if it held the lease, B must take over; a stopped relay
	// records the deliveries it finished, so none is repeated.
	stopA()
	if err := <-doneA; err != nil {
		t.Errorf("relay A: %v", err)
	}
	wait(all, "after relay A stopped")
	stopB()
	if err := <-doneB; err != nil {
		t.Errorf("relay B: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range faults[:min(len(faults), 10)] {
		t.Error(f)
	}
	if len(faults) > 10 {
		t.Errorf("... and %d more", len(faults)-10)
	}
	repeated := 0
	for id, n := range delivered {
		if n != 1 {
			if repeated++; repeated <= 10 {
				t.Errorf("message %s delivered %d times", id, n)
			}
		}
	}
	if repeated > 10 {
		t.Errorf("... %d messages delivered more than once in all", repeated)
	}
}

// lockOnly hides every method of a Locker but Lock, so that a relay takes
// the one lease [es.RelayLease].
type lockOnly struct{ l es.Locker }

func (l lockOnly) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	return l.l.Lock(ctx, name)
}
