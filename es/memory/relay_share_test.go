package memory_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
)

// deliveryRec records every delivery of the relays it serves (relay,
// bucket, key, n, start, end) and reports overlapping deliveries of one
// bucket by two relays and per-key order violations.
type deliveryRec struct {
	mu     sync.Mutex
	busy   map[int]string // bucket -> relay delivering it now
	last   map[string]int // key -> last n delivered
	faults []string
	count  map[string]int // relay -> deliveries
	groups map[string]map[int]bool
	total  int
}

func newDeliveryRec() *deliveryRec {
	return &deliveryRec{busy: map[int]string{}, last: map[string]int{}, count: map[string]int{}, groups: map[string]map[int]bool{}}
}

func (r *deliveryRec) pub(relay string, hold time.Duration) es.Publisher {
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		var n int
		if _, err := fmt.Sscanf(string(m.Data), `{"n":%d}`, &n); err != nil {
			return err
		}
		b := es.MessageBucket(m.Key)
		r.mu.Lock()
		if other, ok := r.busy[b]; ok && other != relay {
			r.faults = append(r.faults, fmt.Sprintf("relay %s delivers %s/%d (bucket %d) while relay %s delivers that bucket", relay, m.Key, n, b, other))
		}
		r.busy[b] = relay
		r.mu.Unlock()
		if hold > 0 {
			time.Sleep(hold)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.busy[b] == relay {
			delete(r.busy, b)
		}
		last, seen := r.last[m.Key]
		if !seen {
			last = -1
		}
		if n < last {
			r.faults = append(r.faults, fmt.Sprintf("relay %s delivers %s/%d after %d", relay, m.Key, n, last))
		}
		r.last[m.Key] = max(last, n)
		r.count[relay]++
		if r.groups[relay] == nil {
			r.groups[relay] = map[int]bool{}
		}
		r.groups[relay][b%es.RelayGroups] = true
		r.total++
		return nil
	})
}

func (r *deliveryRec) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.faults[:min(len(r.faults), 10)] {
		t.Error(f)
	}
	if len(r.faults) > 10 {
		t.Errorf("... and %d more faults", len(r.faults)-10)
	}
}

// keysPerGroup returns n keys for each of the 16 bucket groups.
func keysPerGroup(n int) []string {
	per := make([]int, es.RelayGroups)
	var keys []string
	for i := 0; len(keys) < n*es.RelayGroups; i++ {
		k := "k" + strconv.Itoa(i)
		if g := es.MessageBucket(k) % es.RelayGroups; per[g] < n {
			per[g]++
			keys = append(keys, k)
		}
	}
	return keys
}

func enqueueRound(t *testing.T, o es.Outbox, keys []string, n int) {
	t.Helper()
	var enq es.Enqueue
	for _, k := range keys {
		enq.Messages = append(enq.Messages, es.Message{ID: es.NewID(), Key: k, Type: "Note", SchemaVersion: 1,
			Data: fmt.Appendf(nil, `{"n":%d}`, n)})
	}
	if _, err := o.AppendEnqueue(context.Background(), enq); err != nil {
		t.Fatal(err)
	}
}

// notTry hides TryLock: a Locker that is not an es.TryLocker.
type notTry struct{ l es.Locker }

func (n notTry) Lock(ctx context.Context, name string) (context.Context, func(), error) {
	return n.l.Lock(ctx, name)
}

// A Relay can be Run again, without a Locker or with one that is not a
// TryLocker, as a supervisor restarting a stopped relay does: Run used to
// store its defaults back into the Relay (RebalanceInterval 1s), and the
// next Run failed with ErrInvalidConfig (found by an adversarial review).
func TestARelayRunsAgainWithoutATryLocker(t *testing.T) {
	for _, tc := range []struct {
		name   string
		locker es.Locker
	}{
		{"no Locker", nil},
		{"a Locker that is not a TryLocker", notTry{memory.NewLocker()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := memory.New(memory.Config{})
			relay := es.NewRelay(o, es.PublisherFunc(func(context.Context, es.Message) error { return nil }),
				es.RelayConfig{Locker: tc.locker, PollInterval: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			for i := range 2 {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				err := relay.Run(ctx)
				cancel()
				if err != nil {
					t.Fatalf("run %d: %v (ErrInvalidConfig: %v)", i+1, err, errors.Is(err, es.ErrInvalidConfig))
				}
			}
		})
	}
}

// TestRelayRunAgainWithTryLocker: the same restart works with a
// TryLocker (coverage for the case above that holds).
func TestRelayRunAgainWithTryLocker(t *testing.T) {
	o := memory.New(memory.Config{})
	rec := newDeliveryRec()
	relay := es.NewRelay(o, rec.pub("A", 0), es.RelayConfig{Locker: memory.NewLocker(), PollInterval: time.Millisecond,
		RebalanceInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	keys := keysPerGroup(1)
	for i := range 3 {
		enqueueRound(t, o, keys, i)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := relay.Run(ctx)
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	rec.check(t)
	if rec.total != 3*len(keys) {
		t.Fatalf("%d deliveries, want %d", rec.total, 3*len(keys))
	}
}

// With n relays sharing one outbox, every relay holds at least
// floor(16/n) groups once they settle: a share of ceil(16/n) each let the
// first 8 of 12 relays take every group and left 4 idle (found by an
// adversarial review).
func TestTheGroupsAreDealtToEveryRelayUpToSixteen(t *testing.T) {
	for _, n := range []int{5, 12} {
		t.Run(strconv.Itoa(n)+" relays", func(t *testing.T) {
			o := memory.New(memory.Config{})
			locker := memory.NewLocker()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			rec := newDeliveryRec()
			for i := range n {
				relay := es.NewRelay(o, rec.pub(strconv.Itoa(i), 0), es.RelayConfig{Locker: locker, PollInterval: 2 * time.Millisecond,
					RebalanceInterval: 10 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
				wg.Go(func() {
					if err := relay.Run(ctx); err != nil {
						t.Error(err)
					}
				})
			}
			// Settle (many rebalance intervals), then observe who delivers.
			time.Sleep(500 * time.Millisecond)
			rec.mu.Lock()
			clear(rec.groups)
			rec.mu.Unlock()
			keys := keysPerGroup(2)
			for i := range 20 {
				enqueueRound(t, o, keys, i)
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			rec.mu.Lock()
			held := map[string]int{}
			for r, gs := range rec.groups {
				held[r] = len(gs)
			}
			rec.mu.Unlock()
			cancel()
			wg.Wait()
			rec.check(t)
			var idle []string
			floor := es.RelayGroups / n
			for i := range n {
				if held[strconv.Itoa(i)] < floor {
					idle = append(idle, strconv.Itoa(i))
				}
			}
			sort.Strings(idle)
			if len(idle) > 0 {
				t.Errorf("%d relays: relays %v delivered fewer than floor(16/%d) = %d groups; groups delivered per relay: %v",
					n, idle, n, floor, held)
			}
		})
	}
}

// TestRelayConfigRebalanceIntervalInvalid: the ErrInvalidConfig cases of
// the sharing configuration.
func TestRelayConfigRebalanceIntervalInvalid(t *testing.T) {
	o := memory.New(memory.Config{})
	pub := es.PublisherFunc(func(context.Context, es.Message) error { return nil })
	for name, cfg := range map[string]es.RelayConfig{
		"negative RebalanceInterval":             {Locker: memory.NewLocker(), RebalanceInterval: -1},
		"RebalanceInterval without a Locker":     {RebalanceInterval: time.Second},
		"RebalanceInterval with a non-TryLocker": {Locker: notTry{memory.NewLocker()}, RebalanceInterval: time.Second},
		"65 workers":                             {Locker: memory.NewLocker(), Workers: 65},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := es.NewRelay(o, pub, cfg).Run(ctx)
		cancel()
		if !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}

// TestRelayChurnManyRelaysNoOverlap: 20 relays (more than RelayGroups)
// with 1 to 5 workers start at once on one Locker, then relays are stopped
// and started again at random while messages are fed; afterwards one relay
// drains. No bucket may be delivered by two relays at once, each key's
// messages must come in order, and every message must be delivered.
func TestRelayChurnManyRelaysNoOverlap(t *testing.T) {
	o := memory.New(memory.Config{})
	locker := memory.NewLocker()
	rec := newDeliveryRec()
	keys := keysPerGroup(2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type running struct {
		stop context.CancelFunc
		done chan error
	}
	start := func(i int) running {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		relay := es.NewRelay(o, rec.pub(strconv.Itoa(i), 50*time.Microsecond), es.RelayConfig{Locker: locker, Workers: 1 + i%5,
			PollInterval: time.Millisecond, RebalanceInterval: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
		go func() { done <- relay.Run(rctx) }()
		return running{stop, done}
	}
	relays := map[int]running{}
	for i := range 20 {
		relays[i] = start(i)
	}
	next := 20
	for round := range 150 {
		enqueueRound(t, o, keys, round)
		// Stop one relay and start a new one every other round.
		if round%2 == 0 {
			for i, r := range relays {
				r.stop()
				if err := <-r.done; err != nil {
					t.Fatalf("relay %d: %v", i, err)
				}
				delete(relays, i)
				break
			}
			relays[next] = start(next)
			next++
		}
		time.Sleep(3 * time.Millisecond)
	}
	// Stop all but one, and let it drain.
	for i, r := range relays {
		if len(relays) == 1 {
			break
		}
		r.stop()
		if err := <-r.done; err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		delete(relays, i)
	}
	waitDrained(ctx, t, o)
	for _, r := range relays {
		r.stop()
		<-r.done
	}
	rec.check(t)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, k := range keys {
		if rec.last[k] != 149 {
			t.Errorf("key %s: last delivered %d, want 149", k, rec.last[k])
		}
	}
	t.Logf("%d deliveries of %d messages by %d relays", rec.total, 150*len(keys), next)
}

// TestRelayStoppedWithPublisherIgnoringCtxHoldsItsGroups: relay A is in a
// delivery whose publisher ignores ctx when A is stopped (and B has
// joined). Until that delivery returns, A's Run must not return and B
// must not deliver any message: A still holds every group. Once it
// returns, B takes every group and delivers the rest, in order.
func TestRelayStoppedWithPublisherIgnoringCtxHoldsItsGroups(t *testing.T) {
	o := memory.New(memory.Config{})
	locker := memory.NewLocker()
	rec := newDeliveryRec()
	keys := keysPerGroup(1)
	enqueueRound(t, o, keys, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	inner := rec.pub("A", 0)
	pubA := es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		first := false
		once.Do(func() { first = true })
		if first {
			close(entered)
			<-release // ignores ctx
		}
		return inner.Publish(ctx, m)
	})
	cfg := es.RelayConfig{Locker: locker, PollInterval: time.Millisecond, RebalanceInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	ctxA, stopA := context.WithCancel(ctx)
	doneA := make(chan error, 1)
	go func() { doneA <- es.NewRelay(o, pubA, cfg).Run(ctxA) }()
	<-entered
	var bCount sync.Mutex
	bDelivered := 0
	innerB := rec.pub("B", 0)
	pubB := es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		bCount.Lock()
		bDelivered++
		bCount.Unlock()
		return innerB.Publish(ctx, m)
	})
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	doneB := make(chan error, 1)
	go func() { doneB <- es.NewRelay(o, pubB, cfg).Run(ctxB) }()
	time.Sleep(100 * time.Millisecond) // B joins; A would give up half, but waits for its delivery
	stopA()
	time.Sleep(100 * time.Millisecond)
	select {
	case err := <-doneA:
		t.Fatalf("A returned (%v) while its delivery was in flight", err)
	default:
	}
	bCount.Lock()
	if bDelivered != 0 {
		t.Errorf("B delivered %d messages while A's delivery was in flight", bDelivered)
	}
	bCount.Unlock()
	close(release)
	if err := <-doneA; err != nil {
		t.Fatal(err)
	}
	waitDrained(ctx, t, o)
	stopB()
	if err := <-doneB; err != nil {
		t.Fatal(err)
	}
	rec.check(t)
	if rec.total != len(keys) {
		t.Errorf("%d deliveries, want %d", rec.total, len(keys))
	}
}

// waitDrained waits until o has no message left to deliver.
func waitDrained(ctx context.Context, t *testing.T, o es.Outbox) {
	t.Helper()
	for {
		n, err := o.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("backlog %d", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
