package natsjs_test

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
	"esgo.dev/es/natsjs"
	"esgo.dev/es/sqlite"
)

// The child processes of the crash test are this test binary, re-run
// with these variables set (envChild holds the role: "relay" or
// "consumer").
const (
	envDB   = "ES_NATSJS_DB"
	envURL  = "ES_NATSJS_URL"
	envLife = "ES_NATSJS_LIFE" // a life, as JSON
)

// crashTimeout bounds the crash test: generous, for it checks correctness,
// not speed, and must pass on a loaded machine; below go test's default
// -timeout, so that a stuck test reports its state.
const crashTimeout = 8 * time.Minute

// life shapes the life of a child. The child counts its attempts —
// publishes for the relay, inbox handlings for the consumer — and prints
// a line "attempt" for each, before it does anything about it.
type life struct {
	// KillAt is the attempt at which the child SIGKILLs itself (0: never):
	// before anything happens (a relay's publish, a consumer's handling),
	// or, with After, once it happened and before it is acknowledged —
	// the publish stored by JetStream but not recorded in the outbox, the
	// effect and its inbox record committed but not acknowledged to
	// JetStream.
	KillAt int64
	After  bool
}

// TestHelperNATSChild is not a test: it is the body of the crash test's
// child processes. A "relay" child runs an es.Relay from the store's
// outbox to a natsjs.Publisher; a "consumer" child runs a
// natsjs.Subscriber whose handler inserts each message's effect in the
// inbox's transaction. Both run until killed or sent SIGTERM.
func TestHelperNATSChild(t *testing.T) {
	role := os.Getenv(envChild)
	if role == "" {
		t.Skip("child process of the crash test")
	}
	var l life
	if err := json.Unmarshal([]byte(os.Getenv(envLife)), &l); err != nil {
		t.Fatal(err)
	}
	// The parent holds our stdin open: when it dies, stdin ends, and so
	// do we.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	store, err := sqlite.Open(ctx, os.Getenv(envDB), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	nc, err := nats.Connect(os.Getenv(envURL), reconnecting()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var attempts atomic.Int64
	attempt := func() int64 {
		n := attempts.Add(1)
		fmt.Println("attempt")
		return n
	}
	switch role {
	case "relay":
		pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		p := es.PublisherFunc(func(ctx context.Context, m es.Message) error {
			n := attempt()
			if n == l.KillAt && !l.After {
				killSelf()
			}
			if err := pub.Publish(ctx, m); err != nil {
				return err
			}
			if n == l.KillAt {
				killSelf()
			}
			return nil
		})
		rc := es.RelayConfig{Workers: 4, PollInterval: 10 * time.Millisecond, MaxAttempts: 1 << 30,
			MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxOutageRetries: 1000, Logger: logger}
		if err := es.NewRelay(store, p, rc).Run(ctx); err != nil {
			t.Fatal(err)
		}
	case "consumer":
		handle := func(ctx context.Context, m es.Message) error {
			var d struct{ N int }
			if err := json.Unmarshal(m.Data, &d); err != nil {
				return err
			}
			_, err := sqlite.TxFrom(ctx).ExecContext(ctx, `INSERT INTO effects (message_id, key, n, pid) VALUES (?, ?, ?, ?)`,
				m.ID, m.Key, d.N, os.Getpid())
			return err
		}
		inbox := inboxFunc(func(ctx context.Context, consumer, id string, fn func(context.Context) error) (bool, error) {
			n := attempt()
			if n == l.KillAt && !l.After {
				killSelf()
			}
			ran, err := store.Inbox().Handle(ctx, consumer, id, fn)
			if n == l.KillAt && err == nil {
				killSelf() // committed, not acknowledged
			}
			return ran, err
		})
		sub := natsjs.NewSubscriber(js, "effects", inbox, handle, natsjs.SubscriberConfig{AckWait: time.Second,
			MinBackoff: time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxOutageRetries: 1000, Logger: logger})
		if err := sub.Run(ctx); err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("unknown role %q", role)
	}
}

// inboxFunc adapts a function to es.Inbox.
type inboxFunc func(ctx context.Context, consumer, id string, fn func(context.Context) error) (bool, error)

func (f inboxFunc) Handle(ctx context.Context, consumer, id string, fn func(context.Context) error) (bool, error) {
	return f(ctx, consumer, id, fn)
}

// killSelf SIGKILLs this process, and lets nothing else happen in the
// calling goroutine meanwhile.
func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Hour)
}

// child is a running child process.
type child struct {
	role     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	attempts atomic.Int64 // "attempt" lines read from its output
	done     chan struct{}
}

func startChild(t *testing.T, role, db, url string, l life) *child {
	t.Helper()
	raw, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNATSChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChild+"="+role, envDB+"="+db, envURL+"="+url, envLife+"="+string(raw))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{role: role, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "attempt" {
				c.attempts.Add(1)
			} else if !strings.HasPrefix(sc.Text(), "PASS") && !strings.HasPrefix(sc.Text(), "ok") {
				fmt.Fprintln(os.Stderr, sc.Text())
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// kill SIGKILLs the child unless it died already, and checks that it died
// of a SIGKILL (its own or ours), not of an error.
func (c *child) kill() error {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
		<-c.done
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		return fmt.Errorf("child %d was not killed but ended with %v", c.cmd.Process.Pid, c.cmd.ProcessState)
	}
	return nil
}

// stop ends the child with SIGTERM and checks that it stopped cleanly.
func (c *child) stop() error {
	// A child that has not yet set up its signal handler would die of
	// the SIGTERM: it has once it attempted something.
	for c.attempts.Load() == 0 {
		select {
		case <-c.done:
			return fmt.Errorf("child %d: %v", c.cmd.Process.Pid, c.cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	<-c.done
	if !c.cmd.ProcessState.Success() {
		return fmt.Errorf("child %d: %v", c.cmd.Process.Pid, c.cmd.ProcessState)
	}
	return nil
}

// TestEveryMessageTakesEffectOnceInOrderThroughCrashes runs the relay
// and the consumer in child processes, killed again and again, while the
// NATS server is SIGKILLed and restarted on its storage, and checks from
// the store at the end that every message took effect exactly once, in
// order per key.
//
// The kills do not depend on the machine's speed. Each child dies by its
// own hand at a chosen attempt (a publish or an inbox handling), before
// the attempt or just after it succeeded (published and not recorded in
// the outbox; committed and not acknowledged to JetStream), or by the
// test's SIGKILL once it reached a chosen attempt, in the middle of
// whatever it was doing. Each life's attempts are a fraction of the
// messages, so every life has work to do when it dies. The server is
// killed each time the effects grew by a chosen number, while both sides
// are busy.
func TestEveryMessageTakesEffectOnceInOrderThroughCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), crashTimeout)
	defer cancel()
	db := filepath.Join(t.TempDir(), "es.db")
	store, err := sqlite.Open(ctx, db, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.WriteTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE effects (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL,
			key TEXT NOT NULL, n INTEGER NOT NULL, pid INTEGER NOT NULL)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	const (
		messages = 2000
		keys     = 16
		lives    = 6   // killed lives of each side
		maxLife  = 150 // attempts: lives*maxLife is well below messages
		restarts = 3   // of the server
		every    = 150 // effects between two server restarts
	)
	want := enqueueNotes(ctx, t, store, messages, keys)
	effects := func() int {
		var n int
		if err := store.DB().QueryRowContext(ctx, `SELECT count(*) FROM effects`).Scan(&n); err != nil {
			t.Error(err)
		}
		return n
	}

	var (
		mu     sync.Mutex
		url    = srv.URL()
		report []string
	)
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		report = append(report, fmt.Sprintf(format, args...))
	}
	// side runs the lives of one side, then a last child that lives until
	// the end, which it returns.
	side := func(role string) (*child, error) {
		kinds := map[string]int{}
		var attempts int64
		first := rand.IntN(3) // each way of dying, lives/3 times
		for i := range lives {
			at := 1 + maxLife/3 + rand.Int64N(maxLife*2/3)
			kind := []string{"itself before an attempt", "itself after an attempt", "by the test"}[(first+i)%3]
			l := life{KillAt: at, After: kind == "itself after an attempt"}
			if kind == "by the test" {
				l.KillAt = 0
			}
			c := startChild(t, role, db, url, l)
			for c.attempts.Load() < at {
				select {
				case <-c.done:
				case <-ctx.Done():
					return nil, fmt.Errorf("%s child: %d attempts: %w", role, c.attempts.Load(), ctx.Err())
				case <-time.After(5 * time.Millisecond):
					continue
				}
				break
			}
			if err := c.kill(); err != nil {
				return nil, err
			}
			kinds[kind]++
			attempts += c.attempts.Load()
		}
		logf("%s: %d lives killed (%v), %d attempts in them", role, lives, kinds, attempts)
		return startChild(t, role, db, url, life{}), nil
	}
	var (
		wg          sync.WaitGroup
		errs        = make(chan error, 3)
		last        = make(chan *child, 2)
		sideResults = func(role string) {
			c, err := side(role)
			if err != nil {
				errs <- err
				cancel()
				return
			}
			last <- c
		}
	)
	wg.Go(func() { sideResults("relay") })
	wg.Go(func() { sideResults("consumer") })
	wg.Go(func() {
		for i := range restarts {
			for effects() < (i+1)*every {
				select {
				case <-ctx.Done():
					errs <- fmt.Errorf("server restart %d: %d effects: %w", i, effects(), ctx.Err())
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
			srv.kill()
			time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
			if err := srv.start(); err != nil {
				errs <- err
				cancel()
				return
			}
		}
		logf("server: SIGKILLed and restarted %d times", restarts)
	})
	wg.Wait()
	close(errs)
	close(last)
	for err := range errs {
		t.Fatal(err)
	}
	for effects() < messages {
		select {
		case <-ctx.Done():
			t.Fatalf("%d of %d messages took effect: %v", effects(), messages, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	for c := range last {
		if err := c.stop(); err != nil {
			t.Error(err)
		}
		logf("%s: the last life made %d attempts", c.role, c.attempts.Load())
	}
	for _, r := range report {
		t.Log(r)
	}
	checkEffects(ctx, t, store, want)
}

// enqueueNotes enqueues count messages over keys keys, n counting up per
// key, in batches of up to 20, and returns their IDs.
func enqueueNotes(ctx context.Context, t *testing.T, s *sqlite.Store, count, keys int) []string {
	t.Helper()
	next := make([]int, keys)
	var ids []string
	for len(ids) < count {
		var enq es.Enqueue
		for range min(1+rand.IntN(20), count-len(ids)) {
			k := rand.IntN(keys)
			m := note(fmt.Sprintf("key-%d", k), next[k])
			next[k]++
			enq.Messages = append(enq.Messages, m)
			ids = append(ids, m.ID)
		}
		if _, err := s.AppendEnqueue(ctx, enq); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// checkEffects checks from the store that each of want took effect
// exactly once, the effects of each key in the order of n, and that the
// outbox is empty.
func checkEffects(ctx context.Context, t *testing.T, s *sqlite.Store, want []string) {
	t.Helper()
	var effects, distinct, inbox int
	if err := s.DB().QueryRowContext(ctx, `SELECT count(*), count(DISTINCT message_id),
		(SELECT count(*) FROM es_inbox WHERE consumer = 'effects') FROM effects`).Scan(&effects, &distinct, &inbox); err != nil {
		t.Fatal(err)
	}
	if effects != len(want) || distinct != len(want) || inbox != len(want) {
		t.Fatalf("%d effects of %d messages, %d inbox records: want %d of each", effects, distinct, inbox, len(want))
	}
	got := map[string]bool{}
	rows, err := s.DB().QueryContext(ctx, `SELECT message_id, key, n FROM effects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	last := map[string]int{}
	for rows.Next() {
		var (
			id, key string
			n       int
		)
		if err := rows.Scan(&id, &key, &n); err != nil {
			t.Fatal(err)
		}
		got[id] = true
		if prev, ok := last[key]; (ok && n != prev+1) || (!ok && n != 0) {
			t.Fatalf("key %s: the effect of message %d came after that of %d", key, n, prev)
		}
		last[key] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, id := range want {
		if !got[id] {
			t.Fatalf("message %s never took effect", id)
		}
	}
	if n, err := s.Backlog(ctx); err != nil || n != 0 {
		t.Fatalf("outbox backlog %d (%v), want 0", n, err)
	}
}
