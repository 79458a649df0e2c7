package estest

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
)

// TestRelaySharing checks that relays whose Locker is an [es.TryLocker]
// share the outbox and hand its bucket groups over, each with its own
// Locker from newLocker (as separate processes would have), and with
// different Workers settings:
//
//   - relay A alone delivers, and pauses in a delivery; relay B starts
//     meanwhile; once A's delivery ends, both deliver;
//   - B stops: A takes every group (it delivers messages of all groups);
//   - relay C starts: A and C both deliver; A stops: C takes every group.
//
// Throughout, no two relays may deliver messages of one bucket at the
// same moment, and each key's messages must be delivered once each, in
// order. o must be empty.
func TestRelaySharing(t *testing.T, o es.Outbox, newLocker func() es.Locker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := newSharingHarness(t, o)

	// A alone, paused in its first delivery of a key.
	paused, resume := h.pauseNext("A")
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	doneA := h.run(ctxA, "A", 2, newLocker())
	h.feed()
	h.wait(ctx, paused, "relay A's first delivery")
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	doneB := h.run(ctxB, "B", 3, newLocker())
	close(resume)
	h.until(ctx, "A and B both deliver", func(s sharingState) bool { return s.since["A"] > 0 && s.since["B"] > 0 })

	stopB()
	h.stopped(t, "B", doneB)
	h.until(ctx, "A delivers all groups after B stopped", func(s sharingState) bool { return s.groups["A"] == es.RelayGroups })

	ctxC, stopC := context.WithCancel(ctx)
	defer stopC()
	doneC := h.run(ctxC, "C", 1, newLocker())
	h.until(ctx, "A and C both deliver", func(s sharingState) bool { return s.since["A"] > 0 && s.since["C"] > 0 })
	stopA()
	h.stopped(t, "A", doneA)
	h.until(ctx, "C delivers all groups after A stopped", func(s sharingState) bool { return s.groups["C"] == es.RelayGroups })
	h.drain(ctx)
	stopC()
	h.stopped(t, "C", doneC)
	h.check()
}

// sharingHarness feeds an outbox messages of keys in every bucket group,
// and records the deliveries of the relays it runs.
type sharingHarness struct {
	t    *testing.T
	o    es.Outbox
	keys []string
	next map[string]int // key -> n of its next message

	mu        sync.Mutex
	last      map[string]int    // key -> n of its last message delivered
	busy      map[int]string    // bucket -> relay delivering a message of it now
	since     map[string]int    // relay -> deliveries since the mark
	groups    map[string][]bool // relay -> groups delivered since the mark
	delivered int
	faults    []string
	pause     map[string]chan struct{} // relay -> closed when its next delivery may go on
	paused    chan struct{}
}

// sharingState is what a wait condition looks at.
type sharingState struct {
	since  map[string]int // deliveries since the mark, per relay
	groups map[string]int // groups delivered since the mark, per relay
}

func newSharingHarness(t *testing.T, o es.Outbox) *sharingHarness {
	h := &sharingHarness{t: t, o: o, next: map[string]int{}, last: map[string]int{}, busy: map[int]string{},
		since: map[string]int{}, groups: map[string][]bool{}, pause: map[string]chan struct{}{}}
	// Keys enough for every group to have three.
	perGroup := make([]int, es.RelayGroups)
	for i := 0; ; i++ {
		full := true
		for _, n := range perGroup {
			full = full && n >= 3
		}
		if full {
			break
		}
		k := "key-" + strconv.Itoa(i)
		if g := es.MessageBucket(k) % es.RelayGroups; perGroup[g] < 3 {
			perGroup[g]++
			h.keys = append(h.keys, k)
		}
	}
	for _, k := range h.keys {
		h.last[k] = -1
	}
	return h
}

// feed enqueues one message of each key.
func (h *sharingHarness) feed() {
	var enq es.Enqueue
	for _, k := range h.keys {
		enq.Messages = append(enq.Messages, msgOf(k, h.next[k]))
		h.next[k]++
	}
	mustEnqueue(h.t, h.o, enq)
}

// pauseNext makes relay's next delivery wait, once it has started, until
// resume is closed; paused is closed when it waits.
func (h *sharingHarness) pauseNext(relay string) (paused <-chan struct{}, resume chan<- struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := make(chan struct{})
	h.pause[relay] = r
	h.paused = make(chan struct{})
	return h.paused, r
}

func (h *sharingHarness) publisher(relay string) es.Publisher {
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		var n int
		if _, err := fmt.Sscanf(string(m.Data), `{"n":%d}`, &n); err != nil {
			return err
		}
		b := es.MessageBucket(m.Key)
		h.mu.Lock()
		if other, ok := h.busy[b]; ok {
			h.faults = append(h.faults, fmt.Sprintf("relay %s delivers %s %d of bucket %d while relay %s delivers that bucket",
				relay, m.Key, n, b, other))
		}
		h.busy[b] = relay
		resume := h.pause[relay]
		if resume != nil {
			delete(h.pause, relay)
			close(h.paused)
		}
		h.mu.Unlock()
		defer func() {
			h.mu.Lock()
			if h.busy[b] == relay {
				delete(h.busy, b)
			}
			h.mu.Unlock()
		}()
		if resume != nil {
			select {
			case <-resume:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		// A delivery takes a while, so that overlaps have time to show.
		time.Sleep(100 * time.Microsecond)
		h.mu.Lock()
		defer h.mu.Unlock()
		if want := h.last[m.Key] + 1; n != want {
			h.faults = append(h.faults, fmt.Sprintf("relay %s delivers %s %d: want %d", relay, m.Key, n, want))
		}
		h.last[m.Key] = max(h.last[m.Key], n)
		h.delivered++
		h.since[relay]++
		if h.groups[relay] == nil {
			h.groups[relay] = make([]bool, es.RelayGroups)
		}
		h.groups[relay][b%es.RelayGroups] = true
		return nil
	})
}

func (h *sharingHarness) run(ctx context.Context, relay string, workers int, l es.Locker) <-chan error {
	done := make(chan error, 1)
	cfg := es.RelayConfig{Workers: workers, Locker: l, PollInterval: 5 * time.Millisecond,
		RebalanceInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}
	go func() { done <- es.NewRelay(h.o, h.publisher(relay), cfg).Run(ctx) }()
	return done
}

func (h *sharingHarness) wait(ctx context.Context, ch <-chan struct{}, what string) {
	h.t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		h.t.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

// until marks the deliveries so far, then feeds the outbox, a message of
// each key at a time, until ok holds for the deliveries since the mark.
func (h *sharingHarness) until(ctx context.Context, what string, ok func(sharingState) bool) {
	h.t.Helper()
	h.mu.Lock()
	clear(h.since)
	clear(h.groups)
	h.mu.Unlock()
	for {
		h.feed()
		h.mu.Lock()
		s := sharingState{since: maps.Clone(h.since), groups: map[string]int{}}
		for r, gs := range h.groups {
			for _, g := range gs {
				if g {
					s.groups[r]++
				}
			}
		}
		h.mu.Unlock()
		if ok(s) {
			return
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("waiting until %s: deliveries %v, groups %v: %v", what, s.since, s.groups, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// drain waits until every message fed was delivered.
func (h *sharingHarness) drain(ctx context.Context) {
	h.t.Helper()
	fed := 0
	for _, n := range h.next {
		fed += n
	}
	for {
		h.mu.Lock()
		n := h.delivered
		h.mu.Unlock()
		if n >= fed {
			return
		}
		select {
		case <-ctx.Done():
			h.t.Fatalf("%d of %d messages delivered: %v", n, fed, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (h *sharingHarness) stopped(t *testing.T, relay string, done <-chan error) {
	t.Helper()
	if err := <-done; err != nil {
		t.Errorf("relay %s: %v", relay, err)
	}
}

// check reports the faults seen.
func (h *sharingHarness) check() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.faults[:min(len(h.faults), 10)] {
		h.t.Error(f)
	}
	if len(h.faults) > 10 {
		h.t.Errorf("... and %d more", len(h.faults)-10)
	}
	for k, n := range h.next {
		if h.last[k] != n-1 {
			h.t.Errorf("key %s: %d messages, the last delivered is %d", k, n, h.last[k])
		}
	}
}
