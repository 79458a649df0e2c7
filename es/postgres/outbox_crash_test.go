package postgres_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// The child processes of the outbox crash tests are this test binary,
// re-run with these variables set.
const (
	envOutboxSchema = "ES_PG_OUTBOX_SCHEMA"
	envOutboxMode   = "ES_PG_OUTBOX_MODE" // "effects", "locker", "share" or "process"
	envOutboxLife   = "ES_PG_OUTBOX_LIFE" // a childLife, as JSON
)

// crashTimeout bounds a crash test. It is generous, for these tests check
// correctness, not speed, and must pass on a loaded machine; and it is
// below go test's default -timeout, so that a stuck test reports its
// state rather than a goroutine dump.
const crashTimeout = 9 * time.Minute

// childLife shapes the life of an outbox child. With it the crash tests
// make their own conditions rather than count on the speed of the
// machine: how much a child may deliver, where it dies, how fast it goes.
type childLife struct {
	// Budget is how many deliveries the child attempts before its
	// publisher stalls (0: no limit) until the parent lifts the limit
	// (release). A child started on a backlog larger than its budget
	// still has work to do when it is killed, however fast it runs.
	Budget int64
	// KillAt is the delivery attempt at which the child SIGKILLs itself
	// (0: never): once the attempt is logged, before the publisher does
	// anything, or, with AfterEffect, after the publisher succeeded (the
	// effect committed) and before the relay records the delivery.
	KillAt      int64
	AfterEffect bool
	// Delay is a pause after each successful delivery: it widens the
	// window between an effect and its acknowledgement, and keeps a
	// child from racing through its budget between two looks of the
	// parent.
	Delay time.Duration
	// Workers is the relay's Workers (default 4).
	Workers int
}

// TestHelperOutboxChild is not a test: it is the body of the child
// processes. It runs a relay on the store of its schema until it is
// killed or receives SIGTERM. In the modes "effects" and "locker" the
// publisher applies effectPublisher's effect ("locker" takes the relay's
// leases first); in "process" it is a bus feeding a process manager and a
// command handler (see bookingBus). In every mode lifePublisher logs the
// attempts and applies the child's childLife.
func TestHelperOutboxChild(t *testing.T) {
	schema := os.Getenv(envOutboxSchema)
	if schema == "" {
		t.Skip("child process of the outbox crash tests")
	}
	var life childLife
	if err := json.Unmarshal([]byte(os.Getenv(envOutboxLife)), &life); err != nil {
		t.Fatalf("%s: %v", envOutboxLife, err)
	}
	// The parent holds our stdin open: when it dies (a timed-out test),
	// stdin ends and so do we, rather than relaying on as an orphan. A
	// line "release" lifts the budget.
	released := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for open := true; sc.Scan(); {
			if sc.Text() == "release" && open {
				close(released)
				open = false
			}
		}
		os.Exit(3)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := pgxpool.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 12
	// The parent tells our server sessions by their name (childApp).
	cfg.ConnConfig.RuntimeParams["application_name"] = childApp(os.Getpid())
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	s, err := postgres.New(ctx, pool, postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	rc := es.RelayConfig{Workers: cmp.Or(life.Workers, 4), PollInterval: 20 * time.Millisecond,
		MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logger: logger}
	var pub es.Publisher
	switch mode := os.Getenv(envOutboxMode); mode {
	case "effects":
		pub = effectPublisher(s)
	case "locker":
		pub = effectPublisher(s)
		rc.Locker = s.Locker()
	case "share":
		rc.Locker, rc.RebalanceInterval = s.Locker(), 100*time.Millisecond
		if err := es.NewRelay(s, sharePublisher(s, life, released), rc).Run(ctx); err != nil {
			t.Fatal(err)
		}
		return
	case "process":
		pub = bookingBus(s)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	if err := es.NewRelay(s, lifePublisher(s, pub, life, released), rc).Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// lifePublisher wraps the publisher pub of a child: it counts the
// delivery attempts, stalls those beyond life's budget until released is
// closed, logs each other one in the table "attempts" (outside any
// transaction of pub's), kills the process at life's chosen attempt and
// point, and pauses for life's delay after each successful delivery.
func lifePublisher(s *postgres.Store, pub es.Publisher, life childLife, released <-chan struct{}) es.Publisher {
	attempts := pgx.Identifier{s.Schema(), "attempts"}.Sanitize()
	pid := os.Getpid()
	var count atomic.Int64
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		n := count.Add(1)
		if life.Budget > 0 && n > life.Budget {
			select {
			case <-released:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if _, err := s.Pool().Exec(ctx, `INSERT INTO `+attempts+` (message_id, pid) VALUES ($1, $2)`, m.ID, pid); err != nil {
			return err
		}
		if n == life.KillAt && !life.AfterEffect {
			killSelf()
		}
		if err := pub.Publish(ctx, m); err != nil {
			return err
		}
		if n == life.KillAt && life.AfterEffect {
			killSelf()
		}
		time.Sleep(life.Delay)
		return nil
	})
}

// killSelf SIGKILLs this process, and lets nothing else happen in the
// calling goroutine meanwhile.
func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Hour)
}

// effectPublisher is the consumer of the relay crash tests: in one
// transaction, it records the message in the inbox and, the first time,
// inserts the effect into "effects" (which has no unique key: a second
// effect would show), with the database's clock and the message's "n".
func effectPublisher(s *postgres.Store) es.Publisher {
	effects := pgx.Identifier{s.Schema(), "effects"}.Sanitize()
	pid := os.Getpid()
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		return pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
			first, err := s.InboxTx(ctx, tx, "effects", m.ID)
			if err != nil || !first {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO `+effects+` (message_id, key, n, pid)
				VALUES ($1, $2, ($3::jsonb->>'n')::int, $4)`, m.ID, m.Key, string(m.Data), pid)
			return err
		})
	})
}

// createEffectTables creates the tables of effectPublisher.
func createEffectTables(ctx context.Context, t *testing.T, s *postgres.Store) {
	t.Helper()
	q := pgx.Identifier{s.Schema()}.Sanitize()
	if _, err := s.Pool().Exec(ctx, `
		CREATE TABLE `+q+`.attempts (id bigserial PRIMARY KEY, message_id uuid NOT NULL, pid int NOT NULL,
			at timestamptz NOT NULL DEFAULT clock_timestamp());
		CREATE TABLE `+q+`.effects (id bigserial PRIMARY KEY, message_id uuid NOT NULL, key text NOT NULL,
			n int NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
}

// childApp is the application_name of the server sessions of the child
// process pid.
func childApp(pid int) string { return fmt.Sprintf("es-test-child-%d", pid) }

// waitSessions waits until the number of server sessions of the child
// process pid satisfies ok. A child has sessions once it is running (and
// handles SIGTERM); a killed one keeps them until the server has run the
// statements it sent before it died and noticed the broken connection.
func waitSessions(ctx context.Context, t *testing.T, pool *pgxpool.Pool, pid int, ok func(n int) bool) {
	t.Helper()
	for {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, childApp(pid)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if ok(n) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d server sessions of process %d: %v", n, pid, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// outboxChild is a child process running TestHelperOutboxChild.
type outboxChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed once the child has ended and been waited for
}

// startOutboxChild starts a child process running the relay on schema in
// mode, living life.
func startOutboxChild(t *testing.T, schema, mode string, life childLife) *outboxChild {
	t.Helper()
	raw, err := json.Marshal(life)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOutboxChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOutboxSchema+"="+schema, envOutboxMode+"="+mode,
		envOutboxLife+"="+string(raw), "ES_POSTGRES_DSN="+pgtest.DSN())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe() // closed when this process dies: the child then exits
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &outboxChild{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	// A failing test must not leave a relay running.
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

func (c *outboxChild) pid() int { return c.cmd.Process.Pid }

// release lifts the child's budget.
func (c *outboxChild) release(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "release\n"); err != nil {
		t.Fatalf("releasing child %d: %v", c.pid(), err)
	}
}

// kill SIGKILLs the child, unless it has died already, and checks that it
// died of a SIGKILL (ours or its own), not of an error. It reports
// whether the child was dead already.
func (c *outboxChild) kill(t *testing.T) (dead bool) {
	t.Helper()
	select {
	case <-c.done:
		dead = true
	default:
		if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
		<-c.done
	}
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child %d was not killed but ended with %v", c.pid(), c.cmd.ProcessState)
	}
	return dead
}

// stop ends the child with SIGTERM, once it handles it, and checks that
// it stopped cleanly.
func (c *outboxChild) stop(ctx context.Context, t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	waitSessions(ctx, t, pool, c.pid(), func(n int) bool { return n > 0 })
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	<-c.done
	if !c.cmd.ProcessState.Success() {
		t.Errorf("child %d: %v", c.pid(), c.cmd.ProcessState)
	}
}

// endLife ends the life of c: it waits until c has killed itself or ready
// (asked every 10 ms) reports true, and then kills it. It reports
// whether c killed itself. There is no time limit but ctx's: a life ends
// when it has done what the test needs, however long that takes.
func endLife(ctx context.Context, t *testing.T, c *outboxChild, ready func() bool) (self bool) {
	t.Helper()
	for {
		select {
		case <-c.done:
			return c.kill(t)
		case <-ctx.Done():
			t.Fatalf("child %d: %v", c.pid(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if ready != nil && ready() {
			return c.kill(t)
		}
	}
}

// attemptsBy returns how many deliveries process pid attempted.
func attemptsBy(ctx context.Context, t *testing.T, s *postgres.Store, pid int) int64 {
	t.Helper()
	var n int64
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "attempts"}.Sanitize()+
		` WHERE pid = $1`, pid).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitForBacklog waits until the outbox's backlog is at most n.
func waitForBacklog(ctx context.Context, t *testing.T, s *postgres.Store, n int64) {
	t.Helper()
	for {
		b := backlogOf(ctx, t, s)
		if b <= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("backlog still %d: %v", b, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// note is message n of key, without events: the relay tests need messages only.
func note(key string, n int) es.Message {
	return es.Message{ID: es.NewID(), Key: key, Type: "Note", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// enqueueNotes enqueues count messages over keys keys, n counting up per
// key, in batches of up to 20 (every other one with an event), and
// returns their IDs.
func enqueueNotes(ctx context.Context, t *testing.T, s *postgres.Store, prefix string, count, keys int) []string {
	t.Helper()
	next := make([]int, keys)
	var ids []string
	for len(ids) < count {
		var enq es.Enqueue
		for range min(1+rand.IntN(20), count-len(ids)) {
			k := rand.IntN(keys)
			m := note(fmt.Sprintf("%s-%d", prefix, k), next[k])
			next[k]++
			enq.Messages = append(enq.Messages, m)
			ids = append(ids, m.ID)
		}
		var appends []es.StreamAppend
		if len(ids)%2 == 0 {
			appends = []es.StreamAppend{{StreamID: prefix + "-log", Expected: es.AnyVersion, Events: newEvents("Enqueued", 1)}}
		}
		if _, err := s.AppendEnqueue(ctx, enq, appends...); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func backlogOf(ctx context.Context, t *testing.T, s *postgres.Store) int64 {
	t.Helper()
	n, err := s.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkEffects checks that each of want was attempted at least once and
// took effect exactly once, and that the effects of each key came in
// the order of n. It returns the number of delivery attempts.
func checkEffects(ctx context.Context, t *testing.T, s *postgres.Store, want []string, checkOrder bool) (attempts int) {
	t.Helper()
	q := pgx.Identifier{s.Schema()}.Sanitize()
	var attempted, effects, distinct int
	if err := s.Pool().QueryRow(ctx, `SELECT (SELECT count(DISTINCT message_id) FROM `+q+`.attempts),
		(SELECT count(*) FROM `+q+`.attempts),
		(SELECT count(*) FROM `+q+`.effects), (SELECT count(DISTINCT message_id) FROM `+q+`.effects)`).
		Scan(&attempted, &attempts, &effects, &distinct); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d messages: %d delivery attempts, %d effects", len(want), attempts, effects)
	if attempted != len(want) || effects != len(want) || distinct != len(want) {
		t.Fatalf("%d messages attempted, %d effects of %d messages: want %d of each", attempted, effects, distinct, len(want))
	}
	var missing int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM unnest($1::text[]::uuid[]) AS w(id)
		WHERE NOT EXISTS (SELECT 1 FROM `+q+`.effects e WHERE e.message_id = w.id)`, want).Scan(&missing); err != nil {
		t.Fatal(err)
	}
	if missing != 0 {
		t.Fatalf("%d messages never took effect", missing)
	}
	if !checkOrder {
		return attempts
	}
	rows, err := s.Pool().Query(ctx, `SELECT key, n FROM `+q+`.effects ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int{}
	var (
		key string
		n   int
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &n}, func() error {
		if prev, ok := last[key]; ok && n != prev+1 {
			return fmt.Errorf("key %s: effect of message %d after %d", key, n, prev)
		} else if !ok && n != 0 {
			return fmt.Errorf("key %s: first effect is of message %d", key, n)
		}
		last[key] = n
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return attempts
}

// crashLives delivers the backlog of s with children in mode, one at a
// time, each killed, until at least minKills were and the backlog is
// down to tail; then a last child delivers the rest and is stopped.
//
// The children take turns at dying: by their own hand at a chosen
// delivery attempt, before the publisher does anything or after its
// effect committed (before the relay records the delivery), or by the
// test's SIGKILL once they attempted a chosen number of deliveries. So
// every life does some work, however slow the machine. Each child's
// budget is at most maxBudget and never more than half the backlog it
// starts on, so that, however fast the machine, every kill hits a relay
// with work to do. It returns the number of kills, and of those the
// children inflicted on themselves.
func crashLives(ctx context.Context, t *testing.T, s *postgres.Store, mode string, minKills int,
	maxBudget, tail int64, delay time.Duration) (kills, selfKills int) {
	t.Helper()
	busy := 0
	for turn := rand.IntN(3); kills < minKills || backlogOf(ctx, t, s) > tail; turn++ {
		backlog := backlogOf(ctx, t, s)
		life := childLife{Budget: max(1, min(maxBudget/3+rand.Int64N(maxBudget*2/3), backlog/2)), Delay: delay}
		// The second half of the budget: enough work per life to keep
		// the number of lives, and of process starts, down.
		at := 1 + life.Budget/2 + rand.Int64N((life.Budget+1)/2)
		var (
			c     *outboxChild
			ready func() bool
		)
		switch turn % 3 {
		case 0:
			life.KillAt = at
		case 1:
			life.KillAt, life.AfterEffect = at, true
		default:
			ready = func() bool { return attemptsBy(ctx, t, s, c.pid()) >= at }
		}
		born := time.Now()
		c = startOutboxChild(t, s.Schema(), mode, life)
		if endLife(ctx, t, c, ready) {
			selfKills++
		}
		kills++
		n := backlogOf(ctx, t, s)
		if n > 0 {
			busy++
		}
		t.Logf("kill %d (%s attempt %d of a budget of %d) after %v: backlog %d -> %d",
			kills, [...]string{"self, before the effect, at", "self, after the effect, at", "by the test after"}[turn%3],
			at, life.Budget, time.Since(born).Round(time.Millisecond), backlog, n)
	}
	if busy != kills {
		t.Errorf("only %d of %d kills hit a relay with work to do", busy, kills)
	}
	c := startOutboxChild(t, s.Schema(), mode, childLife{Delay: delay})
	waitForBacklog(ctx, t, s, 0)
	c.stop(ctx, t, s.Pool())
	return kills, selfKills
}

// TestRelayCrash enqueues 2,000 messages over 50 keys and delivers them
// with a relay in a child process that is SIGKILLed again and again (see
// crashLives), at least 10 times. The consumer records each message in
// the inbox in the transaction of its effect: every message must have
// been attempted, and have taken effect exactly once, in order per key.
func TestRelayCrash(t *testing.T) {
	const minKills, total, keys = 10, 2000, 50
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	createEffectTables(ctx, t, s)
	want := enqueueNotes(ctx, t, s, "k", total, keys)

	kills, selfKills := crashLives(ctx, t, s, "effects", minKills, 300, 300, 2*time.Millisecond)
	t.Logf("%d kills, %d of them by the child itself", kills, selfKills)
	// A child that killed itself after an effect left a message to
	// deliver again.
	if attempts := checkEffects(ctx, t, s, want, true); attempts <= total {
		t.Errorf("%d attempts for %d messages: no redelivery, the kills tested nothing", attempts, total)
	}
}

// TestDeadlinesCrash schedules 1,000 deadlines, each a second or more
// ahead, cancels a fifth of them, and has them delivered by a relay in a
// child process that is killed and restarted as they fall due. Each
// deadline not cancelled must take effect exactly once, never before its
// time by the database's clock; the cancelled ones never.
//
// The relay runs from the start, so deadlines fall due under it however
// long the scheduling takes. A deadline counts as cancelled in time if
// the cancellation committed before it fell due: the relay cannot have
// fetched it before. (One cancelled later, which a slow machine could
// cause, may have been delivered, once at most.)
func TestDeadlinesCrash(t *testing.T) {
	const total, batch, keys, minKills = 1000, 50, 50, 4
	const spread = 3 * time.Second
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	createEffectTables(ctx, t, s)

	var (
		scheduled = make(chan struct{}) // closed when the fields below are set
		deliverAt = map[string]time.Time{}
		inTime    = map[string]bool{} // cancelled before due
		late      = map[string]bool{} // cancelled when due, or after
		want      []string
		last      time.Time
	)
	go func() {
		defer close(scheduled)
		lead := time.Second
		for len(deliverAt) < total {
			began := time.Now()
			var enq es.Enqueue
			for range batch {
				m := note(fmt.Sprintf("d-%d", rand.IntN(keys)), len(deliverAt))
				m.DeliverAt = began.Add(lead + rand.N(spread))
				if m.DeliverAt.After(last) {
					last = m.DeliverAt
				}
				deliverAt[m.ID] = m.DeliverAt
				enq.Messages = append(enq.Messages, m)
			}
			if _, err := s.AppendEnqueue(ctx, enq); err != nil {
				t.Error(err)
				return
			}
			var cancel es.Enqueue
			for i, m := range enq.Messages {
				if i%5 == 0 {
					cancel.Cancel = append(cancel.Cancel, m.ID)
				} else {
					want = append(want, m.ID)
				}
			}
			if _, err := s.AppendEnqueue(ctx, cancel); err != nil {
				t.Error(err)
				return
			}
			cancelled := time.Now()
			for _, id := range cancel.Cancel {
				if deliverAt[id].After(cancelled) {
					inTime[id] = true
				} else {
					late[id] = true
				}
			}
			// The next batch is scheduled well ahead of its own cancellation.
			lead = max(time.Second, 10*time.Since(began))
		}
	}()

	due := `SELECT count(*) FROM ` + pgx.Identifier{s.Schema(), "outbox"}.Sanitize() + `
		WHERE delivered_at IS NULL AND cancelled_at IS NULL AND (deliver_at IS NULL OR deliver_at <= clock_timestamp())`
	// A child lives a while (0.3-1 s, and twice as long as it took to
	// start) from its first delivery attempt, and for 20 attempts at
	// least; one in three kills itself at a chosen attempt (50-250)
	// before the effect, one in three after it. Any ends once it lived
	// that while and nothing is due: a deadline not yet due is no work.
	kills, selfKills := 0, 0
lives:
	for turn := rand.IntN(3); ; turn++ {
		select {
		case <-scheduled:
			if t.Failed() {
				t.FailNow()
			}
			if kills >= minKills && time.Now().After(last) && backlogOf(ctx, t, s) == 0 {
				break lives
			}
		default:
		}
		var life childLife
		switch turn % 3 {
		case 0:
			life.KillAt = 50 + rand.Int64N(200)
		case 1:
			life.KillAt, life.AfterEffect = 50+rand.Int64N(200), true
		}
		c := startOutboxChild(t, s.Schema(), "effects", life)
		var working time.Time // the first attempt seen
		born, span := time.Now(), time.Duration(300+rand.IntN(700))*time.Millisecond
		if endLife(ctx, t, c, func() bool {
			if life.KillAt == 0 {
				n := attemptsBy(ctx, t, s, c.pid())
				if working.IsZero() && n > 0 {
					working = time.Now()
				}
				// At least twice as long as it took to start: the relay is
				// up most of the time, on a slow machine too.
				if n >= 20 && time.Since(working) > max(span, 2*working.Sub(born)) {
					return true
				}
			}
			var n int
			if err := s.Pool().QueryRow(ctx, due).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 0 && time.Since(born) > span
		}) {
			selfKills++
		}
		kills++
	}
	t.Logf("the relay was killed %d times, %d of them by itself; %d deadlines cancelled in time, %d late",
		kills, selfKills, len(inTime), len(late))
	if len(inTime) == 0 {
		t.Fatal("no cancellation came in time")
	}

	// Every deadline not cancelled took effect once, and was attempted;
	// those cancelled in time were never attempted.
	var attempted, effects []string
	for _, q := range []struct {
		ids   *[]string
		table string
	}{{&attempted, "attempts"}, {&effects, "effects"}} {
		rows, err := s.Pool().Query(ctx, `SELECT message_id::text FROM `+pgx.Identifier{s.Schema(), q.table}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		if *q.ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
	}
	took := map[string]int{}
	for _, id := range effects {
		took[id]++
	}
	tried := map[string]bool{}
	for _, id := range attempted {
		tried[id] = true
		if inTime[id] {
			t.Fatalf("deadline %s, cancelled in time, was delivered", id)
		}
	}
	for _, id := range want {
		if took[id] != 1 || !tried[id] {
			t.Fatalf("deadline %s took effect %d times (attempted: %v)", id, took[id], tried[id])
		}
	}
	for id, n := range took {
		if _, ok := deliverAt[id]; !ok || inTime[id] || n > 1 {
			t.Fatalf("message %s took effect %d times: a deadline cancelled in time, or no deadline", id, n)
		}
	}
	t.Logf("%d deadlines took effect once each, %d attempts", len(want), len(attempted))

	var early int
	var worst time.Duration
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE e.at < o.deliver_at),
			coalesce(extract(epoch FROM max(e.at - o.deliver_at)), 0) * 1e9
		FROM `+pgx.Identifier{s.Schema(), "effects"}.Sanitize()+` AS e
		JOIN `+pgx.Identifier{s.Schema(), "outbox"}.Sanitize()+` AS o USING (message_id)`).Scan(&early, &worst); err != nil {
		t.Fatal(err)
	}
	t.Logf("latest effect: %v after its deadline (the relay was down part of the time)", worst)
	if early != 0 {
		t.Fatalf("%d deadlines took effect before their time", early)
	}
}

// TestRelayTwoProcesses runs the relay in two processes that share the
// outbox's bucket groups (RelayConfig.Locker), kills one that delivered
// while it still has work (a budget keeps both from finishing), starts
// another, and enqueues more: every message takes effect once, in order
// per key, and the killed process's groups moved to another.
// TestRelaySharingProcesses checks the hand-overs themselves.
func TestRelayTwoProcesses(t *testing.T) {
	const total, keys, budget = 750, 48, 100
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	createEffectTables(ctx, t, s)
	effects := pgx.Identifier{s.Schema(), "effects"}.Sanitize()
	// The keys of the second half cover every bucket group, so the
	// killed process's groups have work after the kill.
	covered := map[int]bool{}
	for k := range keys {
		covered[es.MessageBucket(fmt.Sprintf("b-%d", k))%es.RelayGroups] = true
	}
	if len(covered) != es.RelayGroups {
		t.Fatalf("the keys b-* cover %d of the %d bucket groups", len(covered), es.RelayGroups)
	}

	want := enqueueNotes(ctx, t, s, "a", total, keys)
	children := map[int]*outboxChild{}
	for range 2 {
		c := startOutboxChild(t, s.Schema(), "locker", childLife{Budget: budget, Delay: 2 * time.Millisecond})
		children[c.pid()] = c
	}
	// Each lease is held by one of them, and between them they make at
	// least budget attempts, each a first delivery: the effects reach any
	// target up to the budget.
	target := 1 + rand.IntN(budget)
	var victim int
	for {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*), coalesce((SELECT pid FROM `+effects+` ORDER BY id DESC LIMIT 1), 0)
			FROM `+effects).Scan(&n, &victim); err != nil {
			t.Fatal(err)
		}
		if n >= target {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d effects, waiting for %d: %v", n, target, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if children[victim] == nil {
		t.Fatalf("effects by process %d, not one of the relays", victim)
	}
	children[victim].kill(t)
	delete(children, victim)
	if n := backlogOf(ctx, t, s); n == 0 {
		t.Fatal("the relays delivered everything: the budget failed")
	} else {
		t.Logf("killed process %d after %d effects, backlog %d", victim, target, n)
	}
	for _, c := range children {
		c.release(t)
	}
	c := startOutboxChild(t, s.Schema(), "locker", childLife{Delay: 2 * time.Millisecond})
	children[c.pid()] = c
	want = append(want, enqueueNotes(ctx, t, s, "b", total, keys)...)
	waitForBacklog(ctx, t, s, 0)
	for _, c := range children {
		c.stop(ctx, t, s.Pool())
	}
	checkEffects(ctx, t, s, want, true)

	// Per bucket group, the processes that applied effects, in turn.
	rows, err := s.Pool().Query(ctx, `SELECT key, pid FROM `+effects+` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		key      string
		pid      int
		pids     = map[int]bool{}
		segments = map[int][]int{}
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &pid}, func() error {
		pids[pid] = true
		g := es.MessageBucket(key) % es.RelayGroups
		if seg := segments[g]; len(seg) == 0 || seg[len(seg)-1] != pid {
			segments[g] = append(seg, pid)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	handedOver := 0
	for _, seg := range segments {
		for i := 1; i < len(seg); i++ {
			if seg[i-1] == victim {
				handedOver++
			}
		}
	}
	t.Logf("effects by %d processes; %d groups passed from the killed process to another", len(pids), handedOver)
	if handedOver == 0 {
		t.Fatal("no lease of the killed process passed to another")
	}
}
