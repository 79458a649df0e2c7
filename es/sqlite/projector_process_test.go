package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// Environment of TestHelperProjector.
const (
	projectorEnv          = "ES_SQLITE_PROJECTOR_DB"
	projectorBatchEnv     = "ES_SQLITE_PROJECTOR_BATCH"
	projectorExclusiveEnv = "ES_SQLITE_PROJECTOR_EXCLUSIVE"
)

// TestHelperProjector is not a test: run by TestProjectionCrash and
// TestProjectionFailover in a child process with projectorEnv set, it runs
// the tally projection's subscription on that file until killed.
func TestHelperProjector(t *testing.T) {
	path := os.Getenv(projectorEnv)
	if path == "" {
		t.Skip("helper process for TestProjectionCrash and TestProjectionFailover")
	}
	exitWithParent()
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	s, err := sqlite.Open(ctx, path, sqlite.Config{PollInterval: 20 * time.Millisecond, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	batch, err := strconv.Atoi(os.Getenv(projectorBatchEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "batch:", err)
		os.Exit(2)
	}
	p := tallyProjection("tally")
	sc := es.SubscriptionConfig{BatchSize: batch, PollInterval: 50 * time.Millisecond, Logger: logger}
	if os.Getenv(projectorExclusiveEnv) != "" {
		sc.Locker = s.Locker()
	}
	if err := es.NewSubscription(p.Name, s, s.Consumer(p), sc).Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(3)
	}
	os.Exit(4) // Run returns nil only when ctx ends, which it never does
}

// projector is a child process running TestHelperProjector.
type projector struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

func startProjector(t *testing.T, path string, batch int, exclusive bool) *projector {
	t.Helper()
	cmd, _ := childCommand(t, "TestHelperProjector")
	cmd.Env = append(os.Environ(), projectorEnv+"="+path, projectorBatchEnv+"="+strconv.Itoa(batch))
	if exclusive {
		cmd.Env = append(cmd.Env, projectorExclusiveEnv+"=1")
	}
	p := &projector{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return p
}

// kill kills the child with SIGKILL and checks that it was running until
// then (it did not stop by itself, on an error).
func (p *projector) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("projector %d was not killed but ended with %v: %s", p.cmd.Process.Pid, err, p.stderr)
	}
}

// appendConcurrently appends total counted events from writers goroutines,
// one to three events per append to one of ten streams, every seventh
// append to two streams at once, pausing between appends.
func appendConcurrently(t *testing.T, s es.Store, total, writers int, pause time.Duration) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			left := total / writers
			if w == 0 {
				left += total % writers
			}
			for i := 0; left > 0; i++ {
				n := min(left, 1+rand.IntN(3))
				evs := make([]es.EventData, n)
				for j := range evs {
					evs[j] = countedEvent(rand.Int64N(1000))
				}
				appends := []es.StreamAppend{{StreamID: fmt.Sprintf("tally-%d", rand.IntN(10)), Expected: es.AnyVersion}}
				if i%7 == 6 && n > 1 {
					appends = append(appends, es.StreamAppend{StreamID: fmt.Sprintf("pair-%d", rand.IntN(3)), Expected: es.AnyVersion, Events: evs[1:]})
					evs = evs[:1]
				}
				appends[0].Events = evs
				if _, err := s.Append(ctx, appends...); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				left -= n
				time.Sleep(pause)
			}
		})
	}
	wg.Wait()
}

// TestProjectionCrash runs the tally projection's subscription in a child
// process and kills it with SIGKILL 20 times while writers append 10,000
// events: at a random moment once its checkpoint moved a random number
// of events, or once it has caught up and lived a random while, so that
// every life does work when there is work, however slow the machine.
// After a last run catches up, the read model equals the fold of all
// events: no event lost, none applied twice.
func TestProjectionCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := sqlite.Open(ctx, path, sqlite.Config{Synchronous: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const total = 10_000
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		appendConcurrently(t, s, total, 4, time.Millisecond)
	}()
	defer func() { <-appended }() // no writer may outlive the test
	// The first child finds work.
	for head := int64(0); head == 0; time.Sleep(10 * time.Millisecond) {
		if head, err = s.Head(ctx); err != nil {
			t.Fatal(err)
		}
	}

	batches := []int{1, 16, 100, 256}
	busy := 0
	for round := range 20 {
		from, err := s.LoadCheckpoint(ctx, "tally")
		if err != nil {
			t.Fatal(err)
		}
		// Up to 10 batches, at most 1,000 events: a batch of one event is a
		// transaction, slow with writers contending for the file.
		batch := batches[round%len(batches)]
		born, idle := time.Now(), time.Duration(100+rand.N(400))*time.Millisecond
		target := 1 + rand.Int64N(min(1000, 10*int64(batch)))
		p := startProjector(t, path, batch, false)
		var cp, head int64
		for limit := born.Add(3 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			if cp, err = s.LoadCheckpoint(ctx, "tally"); err != nil {
				t.Fatal(err)
			}
			if head, err = s.Head(ctx); err != nil {
				t.Fatal(err)
			}
			if cp-from >= target {
				busy++
				time.Sleep(rand.N(50 * time.Millisecond))
				break
			}
			if cp >= head && time.Since(born) > idle {
				break
			}
			if time.Now().After(limit) {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
				t.Fatalf("round %d: the projector made no progress from checkpoint %d in 3 minutes (head %d): %s", round, cp, head, p.stderr)
			}
		}
		p.kill(t)
		t.Logf("round %d: killed after %v at checkpoint %d (from %d), head %d", round, time.Since(born).Round(time.Millisecond), cp, from, head)
	}
	<-appended
	if t.Failed() {
		return
	}

	// The last run, not killed, catches up in this process.
	tally := tallyProjection("tally")
	stop := runSubscription(t, es.NewSubscription(tally.Name, s, s.Consumer(tally), es.SubscriptionConfig{PollInterval: 20 * time.Millisecond}))
	waitCaughtUp(t, s, tally.Name, 3*time.Minute)
	stop()
	checkTally(t, s)
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM applied WHERE pid != ?`, os.Getpid()).Scan(&n); err != nil || n == 0 {
		t.Fatalf("the killed processes applied %d events (%v): the kills tested nothing", n, err)
	}
	t.Logf("%d of %d events applied by the killed processes; %d kills after the checkpoint moved as far as chosen, the others once caught up", n, total, busy)
}

// TestProjectionFailover runs the tally projection's subscription in two
// processes with SubscriptionConfig.Locker = store.Locker(): one handles events, the
// other waits; when the active one is killed, the other takes over.
func TestProjectionFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "failover.db")
	s, err := sqlite.Open(ctx, path, sqlite.Config{Synchronous: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	byPID := map[int]*projector{}
	for range 2 {
		p := startProjector(t, path, 16, true)
		byPID[p.cmd.Process.Pid] = p
	}

	appendConcurrently(t, s, 500, 2, 2*time.Millisecond)
	waitCaughtUp(t, s, "tally", 3*time.Minute)
	segs := pidSegments(t, s)
	if len(segs) != 1 {
		t.Fatalf("before the kill, events were applied by %v: more than one process was active", segs)
	}
	active := segs[0]
	if byPID[active] == nil {
		t.Fatalf("events applied by process %d, not one of the projectors", active)
	}
	byPID[active].kill(t)
	killed := time.Now()

	appendConcurrently(t, s, 500, 2, 2*time.Millisecond)
	var other int
	for pid := range byPID {
		if pid != active {
			other = pid
		}
	}
	for {
		var n int
		if err := s.DB().QueryRow(`SELECT count(*) FROM applied WHERE pid = ?`, other).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Since(killed) > 2*time.Minute { // generous: this is no test of speed
			t.Fatalf("no takeover 2 minutes after the kill: %s", byPID[other].stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("process %d took over %v after process %d was killed", other, time.Since(killed), active)
	waitCaughtUp(t, s, "tally", 3*time.Minute)
	if segs := pidSegments(t, s); len(segs) != 2 || segs[0] != active || segs[1] != other {
		t.Fatalf("events were applied by %v in turn, want %d then %d", segs, active, other)
	}
	checkTally(t, s)
	byPID[other].kill(t)
}

// pidSegments returns the processes that applied the events, in position
// order, one entry per run of events applied by the same process.
func pidSegments(t *testing.T, s *sqlite.Store) []int {
	t.Helper()
	rows, err := s.DB().Query(`SELECT pid FROM applied ORDER BY position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var segs []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if len(segs) == 0 || segs[len(segs)-1] != pid {
			segs = append(segs, pid)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return segs
}
