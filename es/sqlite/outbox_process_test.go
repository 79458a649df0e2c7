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
// outside once they did a chosen amount of work, and from inside at
// chosen points of a delivery (before the consumer's transaction, or
// after it commits but before the relay marks the message delivered).
// They make their own conditions rather than count on the speed of the
// machine: a budget bounds what a child may deliver, so that a kill hits
// a relay with work to do however fast it runs; a kill waits for the
// work it needs, however slowly the child runs.

// outboxChildEnv carries a childConfig, as JSON, to TestHelperOutboxRelay.
const outboxChildEnv = "ES_SQLITE_OUTBOX_CHILD"

// childConfig configures the relay a child process runs.
type childConfig struct {
	DB       string // the store's file
	Mode     string // "effects" or "process"
	Attempts string // the file every delivery attempt is logged to
	Workers  int    // es.RelayConfig.Workers
	Lock     bool   // es.RelayConfig.Locker = store.Locker()
	// Budget is how many deliveries the child attempts before they stall
	// (0: no limit) until the parent lifts the limit (relayChild.release).
	Budget int64
	// KillAt is the delivery attempt at which the child kills itself (0:
	// never): before the consumer's transaction or, with AfterEffect,
	// after it committed and before the relay records the delivery.
	KillAt      int64
	AfterEffect bool
	FailRate    float64       // the share of deliveries that fail before doing anything
	Delay       time.Duration // a pause after each successful delivery
}

// TestHelperOutboxRelay is not a test: run in a child process with
// outboxChildEnv set, it runs a relay on the file until killed.
func TestHelperOutboxRelay(t *testing.T) {
	raw := os.Getenv(outboxChildEnv)
	if raw == "" {
		t.Skip("helper process for the outbox crash tests")
	}
	released := exitWithParent()
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
	k := &killer{budget: cfg.Budget, released: released, at: cfg.KillAt, after: cfg.AfterEffect}
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

// killer counts the delivery attempts of a child, stalls those beyond
// its budget until released, and kills the process with SIGKILL at a
// chosen attempt, at a chosen point.
type killer struct {
	budget   int64
	released <-chan struct{}
	at       int64
	after    bool // kill after the effect rather than before
	attempts atomic.Int64
}

// attempt counts a delivery attempt and returns its number, once it is
// within the budget or the budget is lifted. A nil killer counts
// nothing, never stalls and never kills.
func (k *killer) attempt(ctx context.Context) (int64, error) {
	if k == nil {
		return 0, nil
	}
	n := k.attempts.Add(1)
	if k.budget > 0 && n > k.budget {
		select {
		case <-k.released:
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

// maybe kills the process if attempt n is the chosen one and after says
// whether the effect is done is the chosen point.
func (k *killer) maybe(n int64, after bool) {
	if k == nil || k.at == 0 || n != k.at || after != k.after {
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
	n, err := c.kill.attempt(ctx)
	if err != nil {
		return err
	}
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
	c.kill.maybe(n, false)
	var p numbered
	if err := json.Unmarshal(m.Data, &p); err != nil {
		return err
	}
	err = c.s.WriteTx(ctx, func(tx *sql.Tx) error {
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
	c.kill.maybe(n, true) // the effect committed, the relay has not marked the message delivered
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
	stdin  io.Writer
	stderr *bytes.Buffer
	done   chan struct{}
}

func startRelayChild(t *testing.T, cfg childConfig) *relayChild {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdin := childCommand(t, "TestHelperOutboxRelay")
	cmd.Env = append(os.Environ(), outboxChildEnv+"="+string(raw))
	c := &relayChild{cmd: cmd, stdin: stdin, stderr: &bytes.Buffer{}, done: make(chan struct{})}
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

// release lifts the child's budget.
func (c *relayChild) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "release\n"); err != nil {
		t.Fatalf("releasing relay process %d: %v", c.cmd.Process.Pid, err)
	}
}

// killAfter kills the child with SIGKILL after d, unless it killed itself
// before (reported by self). Either way it must have died of SIGKILL, not
// stopped on an error.
func (c *relayChild) killAfter(t *testing.T, d time.Duration) (self bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	return c.killWhen(t, func() bool { return !time.Now().Before(deadline) })
}

// killWhen kills the child with SIGKILL once ready (asked every 10 ms)
// reports true, unless it killed itself before (reported by self).
// Either way it must have died of SIGKILL, not stopped on an error. A
// nil ready waits for the child to kill itself. There is no time limit
// but a generous one against a hung child: a life ends when it has done
// what the test needs, however long that takes.
func (c *relayChild) killWhen(t *testing.T, ready func() bool) (self bool) {
	t.Helper()
	limit := time.Now().Add(3 * time.Minute)
	for {
		if ready != nil && ready() {
			break
		}
		if time.Now().After(limit) {
			_ = c.cmd.Process.Kill()
			<-c.done
			t.Fatalf("relay process %d: its life did not end within 3 minutes: %s", c.cmd.Process.Pid, c.stderr)
		}
		select {
		case <-c.done:
			self = true
		case <-time.After(10 * time.Millisecond):
			continue
		}
		break
	}
	if !self {
		select {
		case <-c.done:
			self = true
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if ws, ok := c.cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("relay process %d was not killed but ended with %v: %s", c.cmd.Process.Pid, c.cmd.ProcessState, c.stderr)
	}
	return self
}

// countAttempts returns how many delivery attempts the log at path holds.
func countAttempts(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return int64(bytes.Count(b, []byte("\n")))
}

// relayLives delivers the backlog of s with children configured by cfg,
// one at a time, each killed, until at least minKills were and the
// backlog is down to tail; then a last child delivers the rest and is
// killed once idle.
//
// The children take turns at dying: by their own hand at a chosen
// delivery attempt, before the consumer's transaction or after it
// committed (before the relay records the delivery), or by the test's
// SIGKILL once they attempted a chosen number of deliveries. So every
// life does some work, however slow the machine. Each child's budget is
// at most maxBudget and never more than half the backlog it starts on,
// so that, however fast the machine, every kill hits a relay with work
// to do. It returns the number of kills, and of those the children
// inflicted on themselves.
func relayLives(t *testing.T, s *sqlite.Store, cfg childConfig, minKills int, maxBudget, tail int64) (kills, selfKills int) {
	t.Helper()
	backlog := func() int64 {
		n, err := s.Backlog(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	busy := 0
	for turn := rand.IntN(3); kills < minKills || backlog() > tail; turn++ {
		before := backlog()
		life := cfg
		life.Budget = max(1, min(maxBudget/3+rand.Int64N(maxBudget*2/3), before/2))
		// The second half of the budget: enough work per life to keep
		// the number of lives, and of process starts, down.
		at := 1 + life.Budget/2 + rand.Int64N((life.Budget+1)/2)
		var ready func() bool
		switch turn % 3 {
		case 0:
			life.KillAt = at
		case 1:
			life.KillAt, life.AfterEffect = at, true
		default:
			from := countAttempts(t, cfg.Attempts)
			ready = func() bool { return countAttempts(t, cfg.Attempts)-from >= at }
		}
		born := time.Now()
		if startRelayChild(t, life).killWhen(t, ready) {
			selfKills++
		}
		kills++
		after := backlog()
		if after > 0 {
			busy++
		}
		t.Logf("kill %d (%s attempt %d of a budget of %d) after %v: backlog %d -> %d",
			kills, [...]string{"self, before the effect, at", "self, after the effect, at", "from outside after"}[turn%3],
			at, life.Budget, time.Since(born).Round(time.Millisecond), before, after)
	}
	if busy != kills {
		t.Fatalf("only %d of %d kills left messages to deliver", busy, kills)
	}
	c := startRelayChild(t, cfg)
	waitForBacklog(t, s, 0, 3*time.Minute)
	c.killAfter(t, 0)
	return kills, selfKills
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
// is killed again and again (see relayLives), at least 10 times, from
// outside and by itself at a chosen delivery (before its consumer's
// transaction, or after it commits and before the relay records the
// delivery). Every message was delivered at least once, and took effect
// exactly once, in order per key.
func TestRelayCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	s, path := openOutboxFile(t)
	msgs := enqueueNumbered(t, s, 2000, 50, nil)
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	// The pause after each effect widens the window between effect and
	// acknowledgement.
	kills, selfKills := relayLives(t, s,
		childConfig{DB: path, Mode: "effects", Attempts: attempts, Workers: 2, Delay: 2 * time.Millisecond}, 10, 300, 300)
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
	if total == len(msgs) {
		t.Fatal("no message was delivered twice: the kills tested nothing")
	}
	pids := map[int]bool{}
	for _, e := range effects {
		pids[e.pid] = true
	}
	t.Logf("%d kills (%d by the child itself, each with messages left), %d processes applied effects; %d delivery attempts for %d messages (%d redeliveries), each applied once",
		kills, selfKills, len(pids), total, len(msgs), total-len(msgs))
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
	waitForBacklog(t, s, 0, 3*time.Minute)
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
