package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// The outbox tests below run es.Relay in child processes (the test binary
// re-executed as TestHelperOutboxRelay) and kill them with SIGKILL: from
// outside at random moments, and from inside at chosen points of a
// delivery (before the consumer's transaction, or after it commits but
// before the relay marks the message delivered).

// outboxChildEnv carries a childConfig, as JSON, to TestHelperOutboxRelay.
const outboxChildEnv = "ES_SQLITE_OUTBOX_CHILD"

// childConfig configures the relay a child process runs.
type childConfig struct {
	DB       string        // the store's file
	Mode     string        // "effects" or "process"
	Attempts string        // the file every delivery attempt is logged to
	Workers  int           // es.RelayConfig.Workers
	Lock     bool          // es.RelayConfig.Locker = store.Locker()
	KillAt   int64         // the child kills itself at this delivery attempt (0: never)
	FailRate float64       // the share of deliveries that fail before doing anything
	Delay    time.Duration // a pause after each successful delivery
}

// TestHelperOutboxRelay is not a test: run in a child process with
// outboxChildEnv set, it runs a relay on the file until killed.
func TestHelperOutboxRelay(t *testing.T) {
	raw := os.Getenv(outboxChildEnv)
	if raw == "" {
		t.Skip("helper process for the outbox crash tests")
	}
	exitWithParent()
	var cfg childConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	s, err := sqlite.Open(ctx, cfg.DB, sqlite.Config{Synchronous: sqlite.SyncNormal, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	log, err := os.OpenFile(cfg.Attempts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attempts log:", err)
		os.Exit(2)
	}
	k := &killer{at: cfg.KillAt}
	var pub es.Publisher
	switch cfg.Mode {
	case "effects":
		pub = &effectConsumer{s: s, log: log, failRate: cfg.FailRate, delay: cfg.Delay, kill: k}
	case "process":
		pub = shopBus(s, log, k, cfg.Delay)
	default:
		fmt.Fprintln(os.Stderr, "mode:", cfg.Mode)
		os.Exit(2)
	}
	rc := es.RelayConfig{Workers: cfg.Workers, PollInterval: 10 * time.Millisecond,
		MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: logger}
	if cfg.Lock {
		rc.Locker = s.Locker()
	}
	_ = es.NewRelay(s, pub, rc).Run(ctx)
	os.Exit(4) // Run returns only when ctx ends, which it never does
}

// killer kills its process with SIGKILL at a given delivery attempt, at
// one of two points chosen at random.
type killer struct {
	at       int64
	attempts atomic.Int64
}

// attempt counts a delivery attempt and returns its number. A nil killer
// counts nothing and never kills.
func (k *killer) attempt() int64 {
	if k == nil {
		return 0
	}
	return k.attempts.Add(1)
}

// maybe kills the process if attempt n is the chosen one and point is
// the chosen point (0 or 1, decided by the attempt's number).
func (k *killer) maybe(n int64, point int) {
	if k == nil || k.at == 0 || n != k.at || int(n%2) != point {
		return
	}
	p, err := os.FindProcess(os.Getpid())
	if err == nil {
		_ = p.Kill()
	}
	time.Sleep(time.Hour) // SIGKILL arrives; nothing else may happen meanwhile
}

// effectConsumer is a publisher whose consumer applies each message to
// the effects table exactly once, through the inbox, in one transaction.
// Every attempt is logged outside that transaction, before it.
type effectConsumer struct {
	s        *sqlite.Store
	log      io.Writer
	failRate float64
	delay    time.Duration
	kill     *killer
	// arrived, when set, is told of every attempt and whether it succeeded.
	arrived func(m es.Message, ok bool)
}

// effectsTable is the consumer's table. It has no unique constraint on
// message_id, so that an effect applied twice would show.
const effectsTable = `CREATE TABLE IF NOT EXISTS effects (
	id         INTEGER PRIMARY KEY,
	message_id TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	n          INTEGER NOT NULL,
	bucket     INTEGER NOT NULL,
	pid        INTEGER NOT NULL,
	at         INTEGER NOT NULL -- wall-clock unix nanoseconds of the effect
)`

// numbered is the payload of the test messages: the nth message of key.
type numbered struct {
	Key string `json:"key"`
	N   int    `json:"n"`
}

// Publish implements es.Publisher.
func (c *effectConsumer) Publish(ctx context.Context, m es.Message) error {
	n := c.kill.attempt()
	if c.log != nil {
		if _, err := c.log.Write([]byte(m.ID + "\n")); err != nil {
			return err
		}
	}
	if c.failRate > 0 && rand.Float64() < c.failRate {
		if c.arrived != nil {
			c.arrived(m, false)
		}
		return errors.New("the broker is down")
	}
	c.kill.maybe(n, 0)
	var p numbered
	if err := json.Unmarshal(m.Data, &p); err != nil {
		return err
	}
	err := c.s.WriteTx(ctx, func(tx *sql.Tx) error {
		first, err := c.s.InboxTx(ctx, tx, "effects", m.ID)
		if err != nil || !first {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO effects (message_id, key, n, bucket, pid, at) VALUES (?, ?, ?, ?, ?, ?)`,
			m.ID, m.Key, p.N, es.MessageBucket(m.Key), os.Getpid(), time.Now().UnixNano())
		return err
	})
	if err != nil {
		return err
	}
	if c.arrived != nil {
		c.arrived(m, true)
	}
	c.kill.maybe(n, 1) // the effect committed, the relay has not marked the message delivered
	time.Sleep(c.delay)
	return nil
}

// openOutboxFile creates a store file with the effects table.
func openOutboxFile(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	s, path := openFile(t, sqlite.Config{Synchronous: sqlite.SyncNormal})
	if err := s.WriteTx(context.Background(), func(tx *sql.Tx) error {
		_, err := tx.Exec(effectsTable)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s, path
}

// enqueueNumbered enqueues total messages over keys keys, message i being
// number i/keys of key i%keys, with DeliverAt from at (nil: at once).
func enqueueNumbered(t *testing.T, s *sqlite.Store, total, keys int, at func(i int) time.Time) []es.Message {
	t.Helper()
	msgs := make([]es.Message, total)
	for i := range msgs {
		key := fmt.Sprintf("key-%02d", i%keys)
		data, _ := json.Marshal(numbered{Key: key, N: i / keys})
		msgs[i] = es.Message{ID: es.NewID(), Key: key, Type: "test.Numbered", SchemaVersion: 1, Data: data}
		if at != nil {
			msgs[i].DeliverAt = at(i)
		}
	}
	for chunk := range slices.Chunk(msgs, 250) {
		if _, err := s.AppendEnqueue(context.Background(), es.Enqueue{Messages: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	return msgs
}

// relayChild is a child process running TestHelperOutboxRelay.
type relayChild struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

func startRelayChild(t *testing.T, cfg childConfig) *relayChild {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := childCommand(t, "TestHelperOutboxRelay")
	cmd.Env = append(os.Environ(), outboxChildEnv+"="+string(raw))
	c := &relayChild{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
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

// killAfter kills the child with SIGKILL after d, unless it killed itself
// before (reported by self). Either way it must have died of SIGKILL, not
// stopped on an error.
func (c *relayChild) killAfter(t *testing.T, d time.Duration) (self bool) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-c.done:
		self = true
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	if ws, ok := c.cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("relay process %d was not killed but ended with %v: %s", c.cmd.Process.Pid, c.cmd.ProcessState, c.stderr)
	}
	return self
}

// readAttempts returns how many delivery attempts the log holds per
// message ID.
func readAttempts(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out[sc.Text()]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type effect struct {
	id, key string
	n       int
	bucket  int
	pid     int
	at      time.Time
}

// readEffects returns the effects table in the order the effects were
// applied.
func readEffects(t *testing.T, s *sqlite.Store) []effect {
	t.Helper()
	rows, err := s.DB().Query(`SELECT message_id, key, n, bucket, pid, at FROM effects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []effect
	for rows.Next() {
		var e effect
		var at int64
		if err := rows.Scan(&e.id, &e.key, &e.n, &e.bucket, &e.pid, &at); err != nil {
			t.Fatal(err)
		}
		e.at = time.Unix(0, at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkExactlyOnce checks that the outbox is empty and the effects hold
// each of want exactly once and nothing else, and, if ordered, that the
// messages of a key took effect in the order written.
func checkExactlyOnce(t *testing.T, s *sqlite.Store, want []es.Message, ordered bool) []effect {
	t.Helper()
	if n, err := s.Backlog(context.Background()); err != nil || n != 0 {
		t.Fatalf("backlog = %d, %v", n, err)
	}
	effects := readEffects(t, s)
	count := map[string]int{}
	last := map[string]int{}
	for _, e := range effects {
		count[e.id]++
		if prev, ok := last[e.key]; ordered && ok && e.n <= prev {
			t.Fatalf("key %s: message %d took effect after message %d", e.key, e.n, prev)
		}
		last[e.key] = e.n
	}
	for _, m := range want {
		if count[m.ID] != 1 {
			t.Fatalf("message %s took effect %d times", m.ID, count[m.ID])
		}
	}
	if len(effects) != len(want) {
		t.Fatalf("%d effects, want %d", len(effects), len(want))
	}
	return effects
}

// TestRelayCrash: 2,000 messages over 50 keys; a relay in a child process
// is killed at random moments, and kills itself at a random delivery
// (before its consumer's transaction, or after it commits and before the
// relay records the delivery), and is restarted until the backlog is
// empty. Every message was delivered at least once, and took effect
// exactly once, in order per key.
func TestRelayCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s, path := openOutboxFile(t)
	msgs := enqueueNumbered(t, s, 2000, 50, nil)
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	kills, selfKills, busyKills := 0, 0, 0
	for round := 0; ; round++ {
		if round == 60 {
			t.Fatal("the backlog is not empty after 60 rounds")
		}
		// Two children in three kill themselves at a chosen point; the
		// others are killed from here at a random moment. The pause after
		// each effect widens the window between effect and acknowledgement
		// and keeps a child from draining the outbox at once.
		cfg := childConfig{DB: path, Mode: "effects", Attempts: attempts, Workers: 2, Delay: 2 * time.Millisecond}
		if round%3 != 2 {
			cfg.KillAt = 50 + rand.Int64N(100)
		}
		c := startRelayChild(t, cfg)
		if c.killAfter(t, time.Duration(100+rand.IntN(400))*time.Millisecond) {
			selfKills++
		}
		kills++
		n, err := s.Backlog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			busyKills++
		}
		if n == 0 && kills >= 10 {
			break
		}
	}
	effects := checkExactlyOnce(t, s, msgs, true)
	log := readAttempts(t, attempts)
	total := 0
	for _, m := range msgs {
		if log[m.ID] == 0 {
			t.Fatalf("message %s took effect but its delivery was not logged", m.ID)
		}
	}
	for _, n := range log {
		total += n
	}
	if busyKills < 10 {
		t.Fatalf("only %d kills left messages to deliver", busyKills)
	}
	if total == len(msgs) {
		t.Fatal("no message was delivered twice: the kills tested nothing")
	}
	pids := map[int]bool{}
	for _, e := range effects {
		pids[e.pid] = true
	}
	t.Logf("%d kills (%d by the child itself, %d with messages left), %d processes applied effects; %d delivery attempts for %d messages (%d redeliveries), each applied once",
		kills, selfKills, busyKills, len(pids), total, len(msgs), total-len(msgs))
}

// TestRelayOrder: four workers and deliveries that fail one time in five;
// the messages of each key still arrive in the order written.
func TestRelayOrder(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, _ := openOutboxFile(t)
	msgs := enqueueNumbered(t, s, 1000, 20, nil)

	var mu sync.Mutex
	arrivals := map[string][]int{} // key -> n of each attempt, -n-1 for a failed one
	failures := 0
	pub := &effectConsumer{s: s, failRate: 0.2, arrived: func(m es.Message, ok bool) {
		var p numbered
		_ = json.Unmarshal(m.Data, &p)
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			failures++
			p.N = -p.N - 1
		}
		arrivals[m.Key] = append(arrivals[m.Key], p.N)
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = es.NewRelay(s, pub, es.RelayConfig{Workers: 4, PollInterval: 2 * time.Millisecond, MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)}).Run(ctx)
	}()
	waitForBacklog(t, s, 0, 60*time.Second)
	cancel()
	<-done

	checkExactlyOnce(t, s, msgs, true)
	mu.Lock()
	defer mu.Unlock()
	for key, ns := range arrivals {
		next := 0 // the message of the key that must arrive next
		for _, n := range ns {
			switch {
			case n == next: // delivered
				next++
			case n == -next-1: // this one failed, and will come again
			default:
				t.Fatalf("key %s: message %d arrived while %d was expected (arrivals %v)", key, max(n, -n-1), next, ns)
			}
		}
		if next != 50 {
			t.Fatalf("key %s: %d of 50 messages arrived", key, next)
		}
	}
	if failures == 0 {
		t.Fatal("no delivery failed")
	}
	t.Logf("%d messages, %d failed deliveries, each key in order", len(msgs), failures)
}

// waitForBacklog waits until the outbox's backlog is at most n.
func waitForBacklog(t *testing.T, s *sqlite.Store, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b, err := s.Backlog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if b <= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog still %d after %v", b, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
