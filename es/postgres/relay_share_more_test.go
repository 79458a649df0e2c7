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
	var (
		mu     sync.Mutex
		busy   = map[int]string{}
		last   = map[string]int{}
		who    = map[string]int{}
		faults []string
	)
	pub := func(relay string) es.Publisher {
		return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
			var n int
			fmt.Sscanf(string(m.Data), `{"n":%d}`, &n)
			b := es.MessageBucket(m.Key)
			mu.Lock()
			if o, ok := busy[b]; ok && o != relay {
				faults = append(faults, fmt.Sprintf("%s delivers bucket %d while %s does", relay, b, o))
			}
			busy[b] = relay
			mu.Unlock()
			time.Sleep(200 * time.Microsecond)
			mu.Lock()
			defer mu.Unlock()
			delete(busy, b)
			if l, ok := last[m.Key]; ok && n < l {
				faults = append(faults, fmt.Sprintf("%s delivers %s/%d after %d", relay, m.Key, n, l))
			}
			last[m.Key] = max(last[m.Key], n)
			who[relay]++
			return nil
		})
	}
	run := func(name string, l es.Locker, workers int) (context.CancelFunc, <-chan error) {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		cfg := es.RelayConfig{Workers: workers, PollInterval: 2 * time.Millisecond, RebalanceInterval: 20 * time.Millisecond,
			Locker: l, Logger: slog.New(slog.DiscardHandler)}
		go func() { done <- es.NewRelay(s, pub(name), cfg).Run(rctx) }()
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
	for {
		n, err := s.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("backlog %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopB()
	stopC()
	for _, d := range []<-chan error{doneB, doneC} {
		if err := <-d; err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range faults[:min(10, len(faults))] {
		t.Error(f)
	}
	for k := range keys {
		if got := last[fmt.Sprintf("key-%d", k)]; got != rounds-1 {
			t.Errorf("key-%d: last %d", k, got)
		}
	}
	t.Logf("deliveries per relay: %v", who)
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
	var (
		mu     sync.Mutex
		busy   = map[int]string{}
		last   = map[string]int{}
		who    = map[string]int{}
		faults []string
	)
	pub := func(relay string) es.Publisher {
		return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
			var n int
			fmt.Sscanf(string(m.Data), `{"n":%d}`, &n)
			b := es.MessageBucket(m.Key)
			mu.Lock()
			if o, ok := busy[b]; ok && o != relay {
				faults = append(faults, fmt.Sprintf("%s delivers bucket %d while %s does", relay, b, o))
			}
			busy[b] = relay
			mu.Unlock()
			time.Sleep(200 * time.Microsecond)
			mu.Lock()
			defer mu.Unlock()
			if busy[b] == relay {
				delete(busy, b)
			}
			if l, ok := last[m.Key]; ok && n < l {
				faults = append(faults, fmt.Sprintf("%s delivers %s/%d after %d", relay, m.Key, n, l))
			}
			last[m.Key] = max(last[m.Key], n)
			who[relay]++
			return nil
		})
	}
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
		r := es.NewRelay(s, pub(fmt.Sprint("R", i)), cfg)
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
	for {
		n, err := s.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("backlog %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, rr := range relays[6:] {
		rr.stop()
		if err := <-rr.done; err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, f := range faults[:min(10, len(faults))] {
		t.Error(f)
	}
	for k := range keys {
		if got := last[fmt.Sprintf("key-%d", k)]; got != rounds-1 {
			t.Errorf("key-%d: last %d", k, got)
		}
	}
	t.Logf("deliveries per relay: %v", who)
}
