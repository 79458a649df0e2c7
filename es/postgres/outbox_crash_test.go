package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
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
	envOutboxMode   = "ES_PG_OUTBOX_MODE" // "effects", "locker" or "process"
)

// TestHelperOutboxChild is not a test: it is the body of the child
// processes. It runs a relay on the store of its schema until it is
// killed or receives SIGTERM. In the modes "effects" and "locker" the
// publisher applies effectPublisher's effect ("locker" takes the relay's
// leases first); in "process" it is a bus feeding a process manager and a
// command handler (see bookingBus).
func TestHelperOutboxChild(t *testing.T) {
	schema := os.Getenv(envOutboxSchema)
	if schema == "" {
		t.Skip("child process of the outbox crash tests")
	}
	// The parent holds our stdin open: when it dies (a timed-out test),
	// stdin ends and so do we, rather than relaying on as an orphan.
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := pgxpool.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	// Each of the 4 workers' leases holds a connection for as long as it
	// lasts (postgres.Locker): the pool needs more than 4, or a process
	// holding every lease waits for a connection forever.
	cfg.MaxConns = 12
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
	rc := es.RelayConfig{Workers: 4, PollInterval: 20 * time.Millisecond,
		MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Logger: logger}
	var pub es.Publisher
	switch mode := os.Getenv(envOutboxMode); mode {
	case "effects":
		pub = effectPublisher(s)
	case "locker":
		pub = effectPublisher(s)
		rc.Locker = s.Locker()
	case "process":
		pub = bookingBus(s)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	if err := es.NewRelay(s, pub, rc).Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// effectPublisher is the consumer of the relay crash tests. It logs every
// delivery attempt in the table "attempts", outside the consumer's
// transaction; then, in one transaction, it records the message in the
// inbox and, the first time, inserts the effect into "effects" (which
// has no unique key: a second effect would show), with the database's
// clock and the message's "n".
func effectPublisher(s *postgres.Store) es.Publisher {
	attempts := pgx.Identifier{s.Schema(), "attempts"}.Sanitize()
	effects := pgx.Identifier{s.Schema(), "effects"}.Sanitize()
	pid := os.Getpid()
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		if _, err := s.Pool().Exec(ctx, `INSERT INTO `+attempts+` (message_id, pid) VALUES ($1, $2)`, m.ID, pid); err != nil {
			return err
		}
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

// startOutboxChild starts a child process running the relay on schema in mode.
func startOutboxChild(t *testing.T, schema, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperOutboxChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envOutboxSchema+"="+schema, envOutboxMode+"="+mode, "ES_POSTGRES_DSN="+pgtest.DSN())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	stdin, err := cmd.StdinPipe() // closed when this process dies: the child then exits
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A failing test must not leave a relay running: kill it (a no-op
	// once it has been waited for).
	t.Cleanup(func() {
		_ = stdin.Close()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	_ = cmd.Wait() // killed: the error says so
}

func stopChild(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("child: %v", err)
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
// the order of n.
func checkEffects(ctx context.Context, t *testing.T, s *postgres.Store, want []string, checkOrder bool) {
	t.Helper()
	q := pgx.Identifier{s.Schema()}.Sanitize()
	var attempted, attempts, effects, distinct int
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
		return
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
}

// TestRelayCrash enqueues 2,000 messages over 50 keys and delivers them
// with a relay in a child process that is SIGKILLed at random moments, at
// least 10 times, and restarted until the backlog is empty. The consumer
// records each message in the inbox in the transaction of its effect:
// every message must have been attempted, and have taken effect exactly
// once, in order per key.
func TestRelayCrash(t *testing.T) {
	const minKills, total, keys = 10, 2000, 50
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createEffectTables(ctx, t, s)
	want := enqueueNotes(ctx, t, s, "k", total, keys)

	killedBusy := 0
	for kills := 0; kills < minKills || backlogOf(ctx, t, s) > 0; kills++ {
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d kills, backlog %d", kills, backlogOf(context.Background(), t, s))
		}
		cmd := startOutboxChild(t, s.Schema(), "effects")
		time.Sleep(time.Duration(150+rand.IntN(250)) * time.Millisecond)
		kill(t, cmd)
		if n := backlogOf(ctx, t, s); n > 0 {
			killedBusy++
			t.Logf("kill %d: backlog %d", kills+1, n)
		}
	}
	if killedBusy < 3 {
		t.Errorf("only %d kills hit a relay with work to do", killedBusy)
	}
	checkEffects(ctx, t, s, want, true)
}

// TestDeadlinesCrash schedules 1,000 deadlines over the next few seconds
// and cancels a fifth of them, while a relay in a child process is killed
// and restarted as they fall due. Each deadline not cancelled must take
// effect exactly once, never before its time by the database's clock;
// the cancelled ones never.
func TestDeadlinesCrash(t *testing.T) {
	const total, keys, minKills = 1000, 50, 4
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createEffectTables(ctx, t, s)

	start := time.Now()
	var (
		ids  []string
		last time.Time
	)
	for len(ids) < total {
		var enq es.Enqueue
		for range 50 {
			m := note(fmt.Sprintf("d-%d", rand.IntN(keys)), len(ids))
			m.DeliverAt = start.Add(time.Second + rand.N(3*time.Second))
			if m.DeliverAt.After(last) {
				last = m.DeliverAt
			}
			enq.Messages = append(enq.Messages, m)
			ids = append(ids, m.ID)
		}
		if _, err := s.AppendEnqueue(ctx, enq); err != nil {
			t.Fatal(err)
		}
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	cancelled, want := ids[:total/5], ids[total/5:]
	for i := 0; i < len(cancelled); i += 40 {
		if _, err := s.AppendEnqueue(ctx, es.Enqueue{Cancel: cancelled[i:min(i+40, len(cancelled))]}); err != nil {
			t.Fatal(err)
		}
	}
	if time.Now().After(start.Add(time.Second)) {
		t.Fatal("scheduling took longer than the first deadline's delay")
	}

	kills := 0
	for ; kills < minKills || time.Now().Before(last) || backlogOf(ctx, t, s) > 0; kills++ {
		if ctx.Err() != nil {
			t.Fatalf("timed out after %d kills, backlog %d", kills, backlogOf(context.Background(), t, s))
		}
		cmd := startOutboxChild(t, s.Schema(), "effects")
		time.Sleep(time.Duration(300+rand.IntN(700)) * time.Millisecond)
		kill(t, cmd)
	}
	t.Logf("the relay was killed %d times", kills)
	checkEffects(ctx, t, s, want, false)
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

// TestRelayTwoProcesses runs the relay in two processes that share its
// workers' leases (RelayConfig.Locker), kills the one that is delivering
// half-way and starts another: every message takes effect once, in order
// per key, and the work moved to another process.
func TestRelayTwoProcesses(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	createEffectTables(ctx, t, s)
	effects := pgx.Identifier{s.Schema(), "effects"}.Sanitize()
	procs := map[int]*exec.Cmd{}
	for range 2 {
		cmd := startOutboxChild(t, s.Schema(), "locker")
		procs[cmd.Process.Pid] = cmd
	}
	want := enqueueNotes(ctx, t, s, "a", 750, 25)
	var victim int
	for victim == 0 {
		err := s.Pool().QueryRow(ctx, `SELECT pid FROM `+effects+` ORDER BY id DESC LIMIT 1`).Scan(&victim)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	kill(t, procs[victim])
	delete(procs, victim)
	cmd := startOutboxChild(t, s.Schema(), "locker")
	procs[cmd.Process.Pid] = cmd
	want = append(want, enqueueNotes(ctx, t, s, "b", 750, 25)...)
	for backlogOf(ctx, t, s) > 0 {
		if ctx.Err() != nil {
			t.Fatalf("timed out with backlog %d", backlogOf(context.Background(), t, s))
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, cmd := range procs {
		stopChild(t, cmd)
	}
	checkEffects(ctx, t, s, want, true)
	var pids int
	if err := s.Pool().QueryRow(ctx, `SELECT count(DISTINCT pid) FROM `+effects).Scan(&pids); err != nil {
		t.Fatal(err)
	}
	t.Logf("effects by %d processes", pids)
	if pids < 2 {
		t.Fatalf("effects by %d process, want the work handed over", pids)
	}
}
