package storekit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es/storekit"
)

func TestLocalLockerGrantsANameToOneHolder(t *testing.T) {
	var l storekit.LocalLocker
	var active, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				held, release, err := l.Lock(context.Background(), "lease")
				if err != nil {
					t.Error(err)
					return
				}
				n := active.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				if held.Err() != nil {
					t.Error("held context done while held")
				}
				active.Add(-1)
				release()
				release() // a second release is harmless
				if held.Err() == nil {
					t.Error("held context still live after release")
				}
			}
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once, want 1", most.Load())
	}
	// Another name is independent; a waiter gives up with its context.
	_, release, _ := l.Lock(context.Background(), "a")
	defer release()
	if _, r, err := l.Lock(context.Background(), "b"); err != nil {
		t.Fatal(err)
	} else {
		r()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := l.Lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held name = %v, want the context's error", err)
	}
}

// TestLocalLockerTryLockDoesNotWait: TryLock reports a lease held by Lock
// or TryLock as held, at once, and takes it once it is released.
func TestLocalLockerTryLockDoesNotWait(t *testing.T) {
	var l storekit.LocalLocker
	ctx := context.Background()
	_, release, err := l.Lock(ctx, "lease")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := l.TryLock(ctx, "lease"); ok || err != nil {
		t.Fatalf("TryLock of a held lease = %v, %v: want false", ok, err)
	}
	release()
	held, release, ok, err := l.TryLock(ctx, "lease")
	if !ok || err != nil {
		t.Fatalf("TryLock of a free lease = %v, %v", ok, err)
	}
	if _, _, ok, _ := l.TryLock(ctx, "lease"); ok {
		t.Fatal("a second TryLock took the lease")
	}
	release()
	if held.Err() == nil {
		t.Fatal("held context still live after release")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, ok, err := l.TryLock(done, "lease"); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("TryLock with an ended context = %v, %v", ok, err)
	}
}
