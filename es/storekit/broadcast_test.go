package storekit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es/storekit"
)

func TestBroadcasterCoalescesAndStopsTheWatchWithTheLastChannel(t *testing.T) {
	var started, stopped atomic.Int32
	b := storekit.NewBroadcaster(func() func() {
		started.Add(1)
		return func() { stopped.Add(1) }
	})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	ch1, ch2 := b.Notify(ctx1), b.Notify(ctx2)
	if started.Load() != 1 {
		t.Fatalf("watch started %d times for two channels, want 1", started.Load())
	}
	for range 3 {
		b.Broadcast()
	}
	for _, ch := range []<-chan struct{}{ch1, ch2} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("no signal")
		}
	}
	// Three broadcasts before a read coalesce: besides the signal read, at
	// most one more can be pending (the forwarding goroutine may have taken
	// the first before the other two came), never three.
	extra := 0
	for done := false; !done; {
		select {
		case <-ch1:
			extra++
		case <-time.After(20 * time.Millisecond):
			done = true
		}
	}
	if extra > 1 {
		t.Fatalf("%d more signals for three broadcasts, want at most 1", extra)
	}
	cancel1()
	waitClosed(t, ch1)
	if stopped.Load() != 0 {
		t.Fatal("watch stopped while a channel is live")
	}
	cancel2()
	waitClosed(t, ch2)
	waitUntil(t, func() bool { return stopped.Load() == 1 })
	// A new channel starts the watch again.
	ctx3, cancel3 := context.WithCancel(context.Background())
	defer cancel3()
	b.Notify(ctx3)
	if started.Load() != 2 {
		t.Fatalf("watch started %d times, want 2", started.Load())
	}
}

func TestClosedBroadcasterClosesEveryChannel(t *testing.T) {
	b := storekit.NewBroadcaster(nil)
	ch := b.Notify(context.Background())
	b.Close()
	waitClosed(t, ch)
	waitClosed(t, b.Notify(context.Background()))
	b.Broadcast() // harmless after Close
	b.Close()     // and so is a second Close
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed")
		}
	}
}

func waitUntil(t *testing.T, ok func() bool) {
	t.Helper()
	for start := time.Now(); !ok(); time.Sleep(time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("condition not reached")
		}
	}
}
