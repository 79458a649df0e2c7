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
