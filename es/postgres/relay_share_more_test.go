package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// TestRelaySharedPostgresLockerInOneProcess: two relays in one process
// share one postgres.Locker (one lease session): they must still not serve
// one bucket together, and a third relay on its own Locker joins them.
func TestRelaySharedPostgresLockerInOneProcess(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shared := s.Locker()
	rec := newSharingRec()
	run := func(name string, l es.Locker, workers int) (context.CancelFunc, <-chan error) {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		cfg := es.RelayConfig{Workers: workers, PollInterval: 2 * time.Millisecond, RebalanceInterval: 20 * time.Millisecond,
			Locker: l, Logger: slog.New(slog.DiscardHandler)}
		go func() { done <- es.NewRelay(s, rec.pub(name), cfg).Run(rctx) }()
		return stop, done
	}
	stopA, doneA := run("A", shared, 2)
	stopB, doneB := run("B", shared, 3)
	stopC, doneC := run("C", s.Locker(), 1)
	const rounds, keys = 30, 48
	for r := range rounds {
		var msgs []es.Message
		for k := range keys {
			msgs = append(msgs, note(fmt.Sprintf("key-%d", k), r))
		}
		if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: msgs}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if r == rounds/2 {
			stopA()
			if err := <-doneA; err != nil {
				t.Error(err)
			}
		}
	}
	waitDrained(ctx, t, s)
	stopB()
	stopC()
	for _, d := range []<-chan error{doneB, doneC} {
		if err := <-d; err != nil {
			t.Error(err)
		}
	}
	rec.check(t, keys, rounds)
}

// TestRelayEighteenPostgresRelaysNoOverlap: 18 relays (more than
// RelayGroups), each on its own Locker and with 1 to 3 workers, start at
// once; a third of them stop half-way. No bucket may be delivered by two
// relays at once, each key stays in order, every message is delivered,
// and at most 16 relays deliver.
func TestRelayEighteenPostgresRelaysNoOverlap(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rec := newSharingRec()
	type running struct {
		stop context.CancelFunc
		done chan error
	}
	var relays []running
	for i := range 18 {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		cfg := es.RelayConfig{Workers: 1 + i%3, PollInterval: 5 * time.Millisecond, RebalanceInterval: 30 * time.Millisecond,
			Locker: s.Locker(), Logger: slog.New(slog.DiscardHandler)}
		r := es.NewRelay(s, rec.pub(fmt.Sprint("R", i)), cfg)
		go func() { done <- r.Run(rctx) }()
		relays = append(relays, running{stop, done})
	}
	const rounds, keys = 30, 64
	for r := range rounds {
		var msgs []es.Message
		for k := range keys {
			msgs = append(msgs, note(fmt.Sprintf("key-%d", k), r))
		}
		if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: msgs}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		if r == rounds/2 {
			for _, rr := range relays[:6] {
				rr.stop()
				if err := <-rr.done; err != nil {
					t.Error(err)
				}
			}
		}
	}
	waitDrained(ctx, t, s)
	for _, rr := range relays[6:] {
		rr.stop()
		if err := <-rr.done; err != nil {
			t.Error(err)
		}
	}
	rec.check(t, keys, rounds)
}

// sharingRec records the deliveries of relays sharing an outbox, each
// message's data {"n": round} of its key, and finds two relays delivering
// one bucket at once and keys delivered out of order.
type sharingRec struct {
	mu     sync.Mutex
	busy   map[int]string // bucket -> the relay delivering it now
	last   map[string]int // key -> the last round delivered
	who    map[string]int // relay -> deliveries
	faults []string
}

func newSharingRec() *sharingRec {
	return &sharingRec{busy: map[int]string{}, last: map[string]int{}, who: map[string]int{}}
}

// pub returns the publisher of the relay called relay: each delivery
// takes a moment, so that two relays serving one bucket would overlap.
func (r *sharingRec) pub(relay string) es.Publisher {
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		var n int
		fmt.Sscanf(string(m.Data), `{"n":%d}`, &n)
		b := es.MessageBucket(m.Key)
		r.mu.Lock()
		if o, ok := r.busy[b]; ok && o != relay {
			r.faults = append(r.faults, fmt.Sprintf("%s delivers bucket %d while %s does", relay, b, o))
		}
		r.busy[b] = relay
		r.mu.Unlock()
		time.Sleep(200 * time.Microsecond)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.busy[b] == relay {
			delete(r.busy, b)
		}
		if l, ok := r.last[m.Key]; ok && n < l {
			r.faults = append(r.faults, fmt.Sprintf("%s delivers %s/%d after %d", relay, m.Key, n, l))
		}
		r.last[m.Key] = max(r.last[m.Key], n)
		r.who[relay]++
		return nil
	})
}

// check reports the faults seen, and any of keys ("key-<k>") whose last
// round delivered is not rounds-1.
func (r *sharingRec) check(t *testing.T, keys, rounds int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.faults[:min(10, len(r.faults))] {
		t.Error(f)
	}
	for k := range keys {
		if got := r.last[fmt.Sprintf("key-%d", k)]; got != rounds-1 {
			t.Errorf("key-%d: last %d", k, got)
		}
	}
	t.Logf("deliveries per relay: %v", r.who)
}

// waitDrained waits until the outbox of s has no message left to deliver.
func waitDrained(ctx context.Context, t *testing.T, s *postgres.Store) {
	t.Helper()
	for {
		n, err := s.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("backlog %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
