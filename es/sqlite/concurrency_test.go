package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// TestConcurrentUse runs 64 goroutines against one file through two
// Stores (each with its own connections, so they contend for the file's
// locks like two processes would) while a child process appends to the
// same file. They mix appends to shared and own streams with reads. No
// call may fail with anything but a concurrency conflict: in particular
// never "database is locked".
func TestConcurrentUse(t *testing.T) {
	const goroutines, ops = 64, 20
	ctx := context.Background()
	s1, path := openFile(t, sqlite.Config{})
	s2, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	stores := []*sqlite.Store{s1, s2}

	var child func()
	if !testing.Short() {
		cmd, lines, stderr := startHelper(t, path, time.Millisecond)
		childAcks := make(chan int, 1)
		go func() {
			n := 0
			for range lines { // the child's events are checked with all others below
				n++
			}
			childAcks <- n
		}()
		child = func() {
			// The child appends until killed, or exits on its first error:
			// its output ending before the kill means it failed.
			select {
			case n := <-childAcks:
				_ = cmd.Wait()
				t.Errorf("the child process ended after %d events: %s", n, stderr)
			default:
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Logf("the child process appended %d events meanwhile", <-childAcks)
			}
		}
	}

	hammer(t, stores, goroutines, ops)
	if child != nil {
		child()
	}

	all, err := es.Collect(s1.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for i, e := range all {
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("position %d follows %d", e.Position, all[i-1].Position)
		}
		if e.Version != last[e.StreamID]+1 {
			t.Fatalf("%s: version %d follows %d", e.StreamID, e.Version, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
	}
	for g := range goroutines {
		if v := last[fmt.Sprintf("own-%d", g)]; v != ops/4 {
			t.Errorf("own-%d is at version %d, want %d", g, v, ops/4)
		}
	}
}

// hammer runs goroutines goroutines against stores (taken in turn), each
// doing ops operations: appends to its own stream (never conflicting), to
// shared streams (with any version, and with the version just read, which
// may conflict) and reads of all events with an append inside the loop.
func hammer(t *testing.T, stores []*sqlite.Store, goroutines, ops int) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	fail := func(g int, what string, err error) {
		if strings.Contains(err.Error(), "locked") || strings.Contains(err.Error(), "busy") {
			t.Errorf("goroutine %d: %s: SQLite busy escaped the store: %v", g, what, err)
			return
		}
		t.Errorf("goroutine %d: %s: %v", g, what, err)
	}
	for g := range goroutines {
		wg.Go(func() {
			s := stores[g%len(stores)]
			own := fmt.Sprintf("own-%d", g)
			shared := fmt.Sprintf("shared-%d", g%4)
			for i := range ops {
				switch i % 4 {
				case 0: // own stream, exact version: never conflicts
					if _, err := es.Append(ctx, s, own, es.Exact(int64(i/4)), event(i)); err != nil {
						fail(g, "append to own stream", err)
					}
				case 1: // shared stream, any version
					if _, err := es.Append(ctx, s, shared, es.AnyVersion, event(i)); err != nil {
						fail(g, "append to shared stream", err)
					}
				case 2: // shared stream, read then exact version: may conflict
					evs, err := es.Collect(s.ReadStream(ctx, shared, es.StreamQuery{Backward: true, Limit: 1}))
					if err != nil {
						fail(g, "read shared stream", err)
						continue
					}
					v := int64(0)
					if len(evs) == 1 {
						v = evs[0].Version
					}
					_, err = s.Append(ctx,
						es.StreamAppend{StreamID: shared, Expected: es.Exact(v), Events: []es.EventData{event(i)}},
						es.StreamAppend{StreamID: own + "-log", Expected: es.AnyVersion, Events: []es.EventData{event(i)}})
					switch {
					case errors.Is(err, es.ErrConcurrency):
						mu.Lock()
						conflicts++
						mu.Unlock()
					case err != nil:
						fail(g, "exact append to shared stream", err)
					}
				case 3: // read everything so far, appending from inside the loop
					n := 0
					for _, err := range s.ReadAll(ctx, es.AllQuery{Categories: []string{"shared", "own"}}) {
						if err != nil {
							fail(g, "read all", err)
							break
						}
						if n++; n == 10 {
							if _, err := es.Append(ctx, s, own+"-inner", es.AnyVersion, event(i)); err != nil {
								fail(g, "append inside a read", err)
							}
						}
					}
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d conflicts", conflicts)
}

func event(n int) es.EventData {
	return es.EventData{ID: es.NewID(), Type: "Did", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// TestNotifyOtherStore checks that a Store hears appends made through
// another Store on the same file (as it would another process's) by
// polling.
func TestNotifyOtherStore(t *testing.T) {
	ctx := t.Context()
	s1, path := openFile(t, sqlite.Config{PollInterval: 20 * time.Millisecond})
	s2, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ch := s1.Notify(ctx)
	time.Sleep(50 * time.Millisecond) // let the poller note the starting position
	if _, err := es.Append(ctx, s2, "bell-1", es.AnyVersion, event(1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification of another store's append within 5s")
	}
}

// TestConcurrentUseMemory is TestConcurrentUse's load on the in-memory
// mode, whose database has no WAL: readers and the writer share it
// through SQLite's rollback-journal locks.
func TestConcurrentUseMemory(t *testing.T) {
	s, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	hammer(t, []*sqlite.Store{s}, 64, 20)
}

// TestConcurrentOpen opens one new file from eight Stores at once (each
// with its own connections, as separate processes would have): creating
// the file, switching it to WAL and creating the schema must not fail.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "new.db")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			s, err := sqlite.Open(ctx, path, sqlite.Config{})
			if err != nil {
				t.Errorf("open %d: %v", i, err)
				return
			}
			defer s.Close()
			if _, err := es.Append(ctx, s, fmt.Sprintf("opener-%d", i), es.NoStream, event(i)); err != nil {
				t.Errorf("append %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}
