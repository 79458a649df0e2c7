package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"esgo.dev/es"
	"esgo.dev/es/esprom"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// stats is the read model of the projection tests: per stream, the number
// of events, the sum of their "n", and the last version. An event applied
// twice shows in the count and the sum, a lost one too, and one applied
// out of order in the last version.
type stats struct{ Events, Total, LastVersion int64 }

// statsProjection keeps stats in a table "stream_stats". It refuses events
// of type "Poison", so tests can make it fail.
func statsProjection(name string) postgres.Projection {
	return postgres.Projection{
		Name:   name,
		Tables: []string{"stream_stats"},
		Setup: func(ctx context.Context, tx pgx.Tx, t postgres.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("stream_stats")+` (
				stream_id    text   PRIMARY KEY,
				events       bigint NOT NULL,
				total        bigint NOT NULL,
				last_version bigint NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx pgx.Tx, t postgres.Tables, e es.Event) error {
			if e.Type == "Poison" {
				return errors.New("poisoned")
			}
			var d struct{ N int64 }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+t.Name("stream_stats")+` AS s VALUES ($1, 1, $2, $3)
				ON CONFLICT (stream_id) DO UPDATE SET events = s.events + 1, total = s.total + excluded.total,
					last_version = excluded.last_version`, e.StreamID, d.N, e.Version)
			return err
		},
	}
}

// fold computes the stats from scratch, from every stored event.
func fold(ctx context.Context, t *testing.T, s *postgres.Store) map[string]stats {
	t.Helper()
	out := map[string]stats{}
	for e, err := range s.ReadAll(ctx, es.AllQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		var d struct{ N int64 }
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		st := out[e.StreamID]
		st.Events++
		st.Total += d.N
		st.LastVersion = max(st.LastVersion, e.Version)
		out[e.StreamID] = st
	}
	return out
}

// readStats reads the table the projection keeps.
func readStats(ctx context.Context, t *testing.T, pool *pgxpool.Pool, schema string) map[string]stats {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT stream_id, events, total, last_version FROM `+pgx.Identifier{schema, "stream_stats"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]stats{}
	var (
		id string
		st stats
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &st.Events, &st.Total, &st.LastVersion}, func() error {
		out[id] = st
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkModel compares the projection's table with the fold of all events.
func checkModel(ctx context.Context, t *testing.T, s *postgres.Store) {
	t.Helper()
	want := fold(ctx, t, s)
	got := readStats(ctx, t, s.Pool(), s.Schema())
	total := 0
	for id, w := range want {
		total += int(w.Events)
		if got[id] != w {
			t.Errorf("stream %s: model %+v, fold %+v", id, got[id], w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("stream %s: model %+v, not in the store", id, g)
		}
	}
	t.Logf("model matches the fold of %d events in %d streams", total, len(want))
}

// writers appends total events from n goroutines, 1-20 events at a time
// to random streams among 50, pausing up to pause between appends. It
// returns a function that waits for them and reports their error.
func writers(ctx context.Context, s *postgres.Store, n, total int, pause time.Duration) func() error {
	var (
		remaining atomic.Int64
		wg        sync.WaitGroup
		errOnce   sync.Once
		firstErr  error
	)
	remaining.Store(int64(total))
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int64(1 + rand.IntN(20))
				if left := remaining.Add(-k); left < 0 {
					k += left
					if k <= 0 {
						return
					}
				}
				evs := make([]es.EventData, k)
				for i := range evs {
					evs[i] = newEvent("Deposited", rand.IntN(1000))
				}
				if _, err := es.Append(ctx, s, fmt.Sprintf("acct-%d", rand.IntN(50)), es.AnyVersion, evs...); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				if pause > 0 {
					time.Sleep(rand.N(pause))
				}
			}
		})
	}
	return func() error { wg.Wait(); return firstErr }
}

// catchUp runs consumer in a subscription until its checkpoint reaches the
// store's head.
func catchUp(ctx context.Context, t testing.TB, s *postgres.Store, c es.Consumer, cfg es.SubscriptionConfig) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cfg.PollInterval = 50 * time.Millisecond
	sub := es.NewSubscription("stats", s, c, cfg)
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	waitCaughtUp(ctx, t, s, c)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitCaughtUp polls until c's checkpoint reaches the store's head.
func waitCaughtUp(ctx context.Context, t testing.TB, s *postgres.Store, c es.Consumer) {
	t.Helper()
	for {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cp >= head {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not caught up: checkpoint %d, head %d", cp, head)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// The child processes of the crash and fail-over tests are this test
// binary, re-run with these variables set.
const (
	envChildSchema = "ES_PG_CHILD_SCHEMA"
	envChildMode   = "ES_PG_CHILD_MODE" // "crash" or "failover"
)

// TestHelperProjectionChild is not a test: it is the body of the child
// processes. It follows the store of schema with the stats projection
// until it is killed or receives SIGTERM. In failover mode it takes the
// subscription's lease first and records, around each Handle, an interval
// in the table "activity".
func TestHelperProjectionChild(t *testing.T) {
	schema := os.Getenv(envChildSchema)
	if schema == "" {
		t.Skip("child process of the crash and fail-over tests")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := pgxpool.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
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
	var c es.Consumer = s.Consumer(statsProjection("stats"))
	sc := es.SubscriptionConfig{BatchSize: 50, PollInterval: 100 * time.Millisecond}
	if os.Getenv(envChildMode) == "failover" {
		c = &activityConsumer{Consumer: c, pool: pool, table: pgx.Identifier{schema, "activity"}.Sanitize()}
		sc.Locker = s.Locker()
	}
	if err := es.NewSubscription("stats", s, c, sc).Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// activityConsumer records, with the database's clock, when each Handle
// started and ended, and in which process.
type activityConsumer struct {
	es.Consumer
	pool  *pgxpool.Pool
	table string
}

func (a *activityConsumer) Handle(ctx context.Context, batch []es.Event) error {
	var id int64
	// Not cut short by the end of ctx (SIGTERM): the row could be written
	// without our knowing its ID, and so never be given its end.
	if err := a.pool.QueryRow(context.WithoutCancel(ctx), `INSERT INTO `+a.table+` (pid, started) VALUES ($1, clock_timestamp()) RETURNING id`,
		os.Getpid()).Scan(&id); err != nil {
		return err
	}
	err := a.Consumer.Handle(ctx, batch)
	if _, uerr := a.pool.Exec(context.WithoutCancel(ctx), `UPDATE `+a.table+` SET ended = clock_timestamp() WHERE id = $1`, id); uerr != nil {
		return errors.Join(err, uerr)
	}
	return err
}

// startChild starts a child process on schema in mode.
func startChild(t *testing.T, schema, mode string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProjectionChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envChildSchema+"="+schema, envChildMode+"="+mode, "ES_POSTGRES_DSN="+pgtest.DSN())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A failing test must not leave a child running.
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

// TestProjectionCrash kills a process running the async projection 20
// times while 10,000 events are appended, then lets a last run catch up:
// the read model must equal a fold of all the events, with nothing lost
// and nothing applied twice. A child is killed at a random moment once
// its checkpoint moved a random number of events (up to 8 batches), or
// once it has caught up and lived a random while: every life does work
// when there is work, however slow the machine.
func TestProjectionCrash(t *testing.T) {
	const kills, total = 20, 10_000
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	c := s.Consumer(statsProjection("stats"))
	// Create the table before the children race to.
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	wait := writers(ctx, s, 4, total, 70*time.Millisecond)
	// The first child finds work.
	for head := int64(0); head == 0; time.Sleep(10 * time.Millisecond) {
		var err error
		if head, err = s.Head(ctx); err != nil {
			t.Fatal(err)
		}
	}
	busy := 0
	for i := range kills {
		from, err := c.Checkpoint(ctx)
		if err != nil {
			t.Fatal(err)
		}
		born, idle := time.Now(), time.Duration(200+rand.IntN(400))*time.Millisecond
		target := 1 + rand.Int64N(400)
		cmd := startChild(t, s.Schema(), "crash")
		var cp, head int64
		for {
			if cp, err = c.Checkpoint(ctx); err != nil {
				t.Fatal(err)
			}
			if head, err = s.Head(ctx); err != nil {
				t.Fatal(err)
			}
			if cp-from >= target {
				busy++
				time.Sleep(rand.N(100 * time.Millisecond))
				break
			}
			if cp >= head && time.Since(born) > idle {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("kill %d: the child made no progress from checkpoint %d, head %d: %v", i+1, cp, head, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait() // killed: the error says so
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("child %d was not killed but ended with %v", cmd.Process.Pid, cmd.ProcessState)
		}
		t.Logf("kill %d after %v: checkpoint %d -> %d, head %d", i+1, time.Since(born).Round(time.Millisecond), from, cp, head)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d of %d kills after the checkpoint moved as far as chosen, the others once caught up", busy, kills)
	// The first child started on events, and lived until it moved the
	// checkpoint or caught up.
	if cp, err := c.Checkpoint(ctx); err != nil || cp == 0 {
		t.Fatalf("checkpoint %d (%v): the killed processes handled nothing", cp, err)
	}
	catchUp(ctx, t, s, c, es.SubscriptionConfig{})
	checkModel(ctx, t, s)
}

// TestProjectionFailover runs the projection in two processes with an
// exclusive lease, kills the active one three times (starting a new
// standby each time), and checks that the other takes over within
// seconds, that no two processes ever handled events at the same time,
// and that the model equals the fold.
func TestProjectionFailover(t *testing.T) {
	const rounds = 3
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	activity := pgx.Identifier{s.Schema(), "activity"}.Sanitize()
	if _, err := pool.Exec(ctx, `CREATE TABLE `+activity+` (id bigserial PRIMARY KEY, pid int NOT NULL,
		started timestamptz NOT NULL, ended timestamptz)`); err != nil {
		t.Fatal(err)
	}
	c := s.Consumer(statsProjection("stats"))
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}

	children := map[int]*exec.Cmd{}
	start := func() {
		cmd := startChild(t, s.Schema(), "failover")
		children[cmd.Process.Pid] = cmd
	}
	defer func() {
		for _, cmd := range children {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	start()
	start()

	wctx, stopWriters := context.WithCancel(ctx)
	wait := writers(wctx, s, 2, 1_000_000, 20*time.Millisecond)
	// activeSince returns the process that most recently started a
	// Handle after since (a database timestamp), if any.
	activeSince := func(since time.Time) (int, bool) {
		var pid int
		err := pool.QueryRow(ctx, `SELECT pid FROM `+activity+` WHERE started > $1 ORDER BY id DESC LIMIT 1`, since).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return pid, true
	}
	dbNow := func() time.Time {
		var now time.Time
		if err := pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
			t.Fatal(err)
		}
		return now
	}
	waitActive := func(since time.Time, not int) int {
		// Generous: this is no test of speed.
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if pid, ok := activeSince(since); ok && pid != not {
				return pid
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("no process took over within 2 minutes")
		return 0
	}

	active := waitActive(time.Time{}, 0)
	for i := range rounds {
		time.Sleep(time.Duration(300+rand.IntN(500)) * time.Millisecond)
		if pid, ok := activeSince(time.Time{}); ok {
			active = pid
		}
		cmd := children[active]
		if cmd == nil {
			t.Fatalf("active pid %d is not a child", active)
		}
		// Whatever the killed process did ended about this moment: it may
		// still start a Handle before the signal lands, whose record the
		// server may even write after the process died. Once the
		// server's sessions of the process are gone, its open records
		// end at this moment, or at their start if later.
		killedAt := dbNow()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		delete(children, active)
		waitSessions(ctx, t, pool, active, func(n int) bool { return n == 0 })
		if _, err := pool.Exec(ctx, `UPDATE `+activity+` SET ended = greatest(started, $2) WHERE pid = $1 AND ended IS NULL`,
			active, killedAt); err != nil {
			t.Fatal(err)
		}
		start()
		next := waitActive(killedAt, active)
		t.Logf("round %d: killed %d; %d took over after %v", i+1, active, next, time.Since(killedAt).Round(time.Millisecond))
		active = next
	}
	stopWriters()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(ctx, t, s, c)
	for pid, cmd := range children {
		waitSessions(ctx, t, pool, pid, func(n int) bool { return n > 0 }) // it handles SIGTERM
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v", pid, err)
		}
		delete(children, pid)
	}

	var handles, overlaps, open int
	if err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE ended IS NULL) FROM `+activity).Scan(&handles, &open); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+activity+` a JOIN `+activity+` b
		ON a.pid <> b.pid AND a.started < b.ended AND b.started < a.ended`).Scan(&overlaps); err != nil {
		t.Fatal(err)
	}
	if open != 0 || overlaps != 0 {
		rows, err := pool.Query(ctx, `SELECT format('%s %s %s', pid, started, coalesce(ended::text, '-')) FROM `+activity+` ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		list, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("activity (process, start, end):\n%s", strings.Join(list, "\n"))
		t.Fatalf("%d of %d Handle calls overlap with another process's; %d never ended", overlaps, handles, open)
	}
	t.Logf("%d Handle calls, none overlapping", handles)
	checkModel(ctx, t, s)
}

// TestRebuild rebuilds the projection over 100,000 events while appends
// continue and its live consumer keeps running: after the swap (and the
// consumer's catching up) the table equals the fold.
func TestRebuild(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	appendMany(ctx, t, s, 100_000)
	p := statsProjection("stats")
	c := s.Consumer(p)

	sctx, stopSub := context.WithCancel(ctx)
	subDone := make(chan error, 1)
	go func() {
		subDone <- es.NewSubscription("stats", s, c, es.SubscriptionConfig{PollInterval: 50 * time.Millisecond}).Run(sctx)
	}()
	// A row the events do not explain: the rebuilt table must not have it.
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{s.Schema(), "stream_stats"}.Sanitize()+
		` VALUES ('bogus-1', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}

	wctx, stopWriters := context.WithCancel(ctx)
	wait := writers(wctx, s, 1, 1_000_000, 20*time.Millisecond)
	start := time.Now()
	if err := s.Rebuild(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuilt in %v", time.Since(start).Round(time.Millisecond))
	stopWriters()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(ctx, t, s, c)
	stopSub()
	if err := <-subDone; err != nil {
		t.Fatal(err)
	}
	checkModel(ctx, t, s)
	var leftover bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`,
		s.RebuildSchema(p.Name)).Scan(&leftover); err != nil {
		t.Fatal(err)
	}
	if leftover {
		t.Fatal("the rebuild schema was left behind")
	}
}

// appendMany appends n events, 1,000 per append, across 200 streams.
func appendMany(ctx context.Context, t testing.TB, s *postgres.Store, n int) {
	t.Helper()
	for i := 0; i < n; i += 1000 {
		appends := make([]es.StreamAppend, 10)
		for j := range appends {
			evs := make([]es.EventData, 100)
			for k := range evs {
				evs[k] = newEvent("Deposited", rand.IntN(1000))
			}
			appends[j] = es.StreamAppend{StreamID: fmt.Sprintf("bulk-%d", (i/1000*10+j)%200), Expected: es.AnyVersion, Events: evs}
		}
		if _, err := s.Append(ctx, appends...); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInlineProjection: an append's effect on the inline projection is
// visible as soon as Append returns; an Apply error rolls the whole append
// back; a rebuild under concurrent appends ends equal to the fold.
func TestInlineProjection(t *testing.T) {
	pool := pgtest.Pool(t)
	p := statsProjection("inline-stats")
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{Inline: []postgres.Projection{p}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for i := range 5 {
		if _, err := es.Append(ctx, s, "acct-1", es.AnyVersion, newEvent("Deposited", 10)); err != nil {
			t.Fatal(err)
		}
		if got, want := readStats(ctx, t, pool, s.Schema())["acct-1"], (stats{int64(i + 1), int64(10 * (i + 1)), int64(i + 1)}); got != want {
			t.Fatalf("after append %d: %+v, want %+v", i+1, got, want)
		}
	}

	before := readStats(ctx, t, pool, s.Schema())
	_, err := s.Append(ctx,
		es.StreamAppend{StreamID: "acct-1", Expected: es.AnyVersion, Events: []es.EventData{newEvent("Deposited", 1)}},
		es.StreamAppend{StreamID: "acct-2", Expected: es.NoStream, Events: []es.EventData{newEvent("Deposited", 2), newEvent("Poison", 3)}})
	if err == nil {
		t.Fatal("an append the inline projection refused succeeded")
	}
	t.Logf("refused: %v", err)
	if all, _ := es.Collect(s.ReadAll(ctx, es.AllQuery{})); len(all) != 5 {
		t.Fatalf("the refused append left events: %d in the store, want 5", len(all))
	}
	if after := readStats(ctx, t, pool, s.Schema()); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the refused append changed the model: %v, was %v", after, before)
	}

	// AppendTx: the projection commits with the caller's transaction.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "acct-3", Expected: es.NoStream, Events: []es.EventData{newEvent("Deposited", 7)}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	checkModel(ctx, t, s)

	// Rebuild while appends keep applying to the live table.
	if _, err := pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{s.Schema(), "stream_stats"}.Sanitize()+
		` VALUES ('bogus-1', 1, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	appendMany(ctx, t, s, 5_000)
	wctx, stopWriters := context.WithCancel(ctx)
	wait := writers(wctx, s, 4, 1_000_000, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	if err := s.Rebuild(ctx, p); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stopWriters()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	checkModel(ctx, t, s)
}

// TestSetupContract: Setup runs in a transaction of its own before the
// first event, again whenever a consumer or store starts (so it must be
// idempotent), and on the fresh tables of a rebuild.
func TestSetupContract(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := es.Append(ctx, s, "acct-1", es.NoStream, newEvents("Deposited", 10)...); err != nil {
		t.Fatal(err)
	}
	all, err := es.Collect(s.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	var setups atomic.Int32
	p := statsProjection("stats")
	setup := p.Setup
	p.Setup = func(ctx context.Context, tx pgx.Tx, t postgres.Tables) error {
		setups.Add(1)
		return setup(ctx, tx, t)
	}
	wantSetups := func(n int32) {
		t.Helper()
		if got := setups.Load(); got != n {
			t.Fatalf("Setup ran %d times, want %d", got, n)
		}
	}

	// The first batch fails, yet the table stays: Setup committed first.
	failing := p
	refused := errors.New("refused")
	failing.Apply = func(context.Context, pgx.Tx, postgres.Tables, es.Event) error { return refused }
	if err := s.Consumer(failing).Handle(ctx, all); !errors.Is(err, refused) {
		t.Fatalf("Handle = %v, want the Apply error", err)
	}
	wantSetups(1)
	if got := readStats(ctx, t, pool, s.Schema()); len(got) != 0 {
		t.Fatalf("stats after a failed batch: %v", got)
	}

	// A consumer sets up once, on its first Checkpoint or Handle.
	c := s.Consumer(p)
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Handle(ctx, all); err != nil {
		t.Fatal(err)
	}
	wantSetups(2)
	if err := s.SetupProjection(ctx, p); err != nil {
		t.Fatal(err)
	}
	wantSetups(3)
	if err := s.Rebuild(ctx, p); err != nil {
		t.Fatal(err)
	}
	wantSetups(4)
	checkModel(ctx, t, s)

	// Inline: once per store, when it migrates.
	for range 2 {
		s2, err := postgres.New(ctx, pool, postgres.Config{Schema: s.Schema(), Inline: []postgres.Projection{p}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s2.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s2.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		_ = s2.Close()
	}
	wantSetups(6)
}

// TestConsumerRetriesAfterFailure: an event the projection refuses stops
// the subscription with an *es.HandlerError at that event, everything
// before it applied.
func TestConsumerStopsAtFailure(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := es.Append(ctx, s, "acct-1", es.NoStream, newEvent("Deposited", 1), newEvent("Deposited", 2), newEvent("Poison", 3)); err != nil {
		t.Fatal(err)
	}
	c := s.Consumer(statsProjection("stats"))
	err := es.NewSubscription("stats", s, c, es.SubscriptionConfig{MaxAttempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}).Run(ctx)
	var herr *es.HandlerError
	if !errors.As(err, &herr) || herr.Event.Type != "Poison" {
		t.Fatalf("got %v, want a HandlerError at the Poison event", err)
	}
	if cp, _ := c.Checkpoint(ctx); cp != herr.Event.Position-1 {
		t.Fatalf("checkpoint %d, want %d", cp, herr.Event.Position-1)
	}
	if got := readStats(ctx, t, pool, s.Schema())["acct-1"]; got != (stats{2, 3, 2}) {
		t.Fatalf("model %+v, want the two events before the failure", got)
	}
}

// TestProjectionMetrics follows the subscription metrics of a Postgres
// projection through a Prometheus registry.
func TestProjectionMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := esprom.NewSubscriptionMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	if _, err := es.Append(ctx, s, "acct-1", es.NoStream, newEvents("Deposited", 30)...); err != nil {
		t.Fatal(err)
	}
	head, err := s.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &lagProbe{Consumer: s.Consumer(statsProjection("stats")), lag: m.Lag("stats")}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- es.NewSubscription("stats", s, c, es.SubscriptionConfig{BatchSize: 10, Observer: m}).Run(sctx)
	}()
	// Wait for the gauges, not the checkpoint: they are set after it.
	for testutil.ToFloat64(m.Position("stats")) != float64(head) || testutil.ToFloat64(m.Lag("stats")) != 0 {
		if sctx.Err() != nil {
			t.Fatal("the metrics never showed the subscription caught up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if fmt.Sprint(c.seen) != "[0 20 10]" {
		t.Errorf("lag when each batch arrived = %v, want [0 20 10]", c.seen)
	}
	for name, want := range map[string]float64{"position": float64(head), "lag": 0, "events": 30} {
		var got float64
		switch name {
		case "position":
			got = testutil.ToFloat64(m.Position("stats"))
		case "lag":
			got = testutil.ToFloat64(m.Lag("stats"))
		case "events":
			got = testutil.ToFloat64(m.Events("stats"))
		}
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := gather(t, reg)[`es_subscription_handle_duration_seconds{subscription="stats"}_count`]; got != 3 {
		t.Errorf("handle duration count = %v, want 3 batches", got)
	}
}

// lagProbe notes the lag gauge whenever a batch arrives. (Handle calls
// of one subscription never overlap.)
type lagProbe struct {
	es.Consumer
	lag  prometheus.Gauge
	seen []float64
}

func (p *lagProbe) Handle(ctx context.Context, batch []es.Event) error {
	p.seen = append(p.seen, testutil.ToFloat64(p.lag))
	return p.Consumer.Handle(ctx, batch)
}

// TestCheckpointStore saves and loads checkpoints.
func TestCheckpointStore(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	if cp, err := s.LoadCheckpoint(ctx, "mailer"); err != nil || cp != 0 {
		t.Fatalf("missing checkpoint = %d, %v; want 0", cp, err)
	}
	for _, pos := range []int64{7, 42} {
		if err := s.SaveCheckpoint(ctx, "mailer", pos); err != nil {
			t.Fatal(err)
		}
		if cp, err := s.LoadCheckpoint(ctx, "mailer"); err != nil || cp != pos {
			t.Fatalf("checkpoint = %d, %v; want %d", cp, err, pos)
		}
	}
	var _ es.CheckpointStore = s
	var _ es.HeadReader = s
}

// TestLocker: a lease excludes a second holder until it is released, and
// a lease whose connection is terminated is reported lost and can be
// taken by another.
func TestLocker(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := s.Locker(), postgres.NewLocker(pool, s.Schema())

	held, release, err := a.Lock(ctx, "job")
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 400*time.Millisecond)
	if _, _, err := b.Lock(short, "job"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Lock while held: got %v, want a deadline error", err)
	}
	cancelShort()
	if _, rel, err := b.Lock(ctx, "other-job"); err != nil {
		t.Fatalf("another name: %v", err)
	} else {
		rel()
	}
	release()
	release() // twice is harmless
	if held.Err() == nil {
		t.Fatal("held context still live after release")
	}

	held, release, err = b.Lock(ctx, "job")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	key := postgres.LeaseKey(s.Schema(), "job")
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1`, key); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	select {
	case <-held.Done():
		if !errors.Is(context.Cause(held), postgres.ErrLeaseLost) {
			t.Fatalf("cause %v, want ErrLeaseLost", context.Cause(held))
		}
		t.Logf("loss noticed after %v", time.Since(lost).Round(time.Millisecond))
	case <-ctx.Done():
		t.Fatal("the lost lease was not noticed")
	}
	_, rel, err := a.Lock(ctx, "job")
	if err != nil {
		t.Fatal(err)
	}
	rel()
}

// batchStatsProjection keeps the same stats as statsProjection, a batch
// at a time: the batch is folded in Go, per stream, and written with one
// multi-row upsert.
func batchStatsProjection(name string) postgres.Projection {
	p := statsProjection(name)
	p.Apply = nil
	p.ApplyBatch = func(ctx context.Context, tx pgx.Tx, t postgres.Tables, events []es.Event) error {
		type delta struct{ events, total, last int64 }
		deltas := map[string]*delta{}
		var ids []string
		for _, e := range events {
			var d struct{ N int64 }
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return err
			}
			st := deltas[e.StreamID]
			if st == nil {
				st = &delta{}
				deltas[e.StreamID] = st
				ids = append(ids, e.StreamID)
			}
			st.events++
			st.total += d.N
			st.last = e.Version
		}
		counts, totals, lasts := make([]int64, len(ids)), make([]int64, len(ids)), make([]int64, len(ids))
		for i, id := range ids {
			counts[i], totals[i], lasts[i] = deltas[id].events, deltas[id].total, deltas[id].last
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+t.Name("stream_stats")+` AS s
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
			ON CONFLICT (stream_id) DO UPDATE SET events = s.events + excluded.events, total = s.total + excluded.total,
				last_version = excluded.last_version`, ids, counts, totals, lasts)
		return err
	}
	return p
}

// BenchmarkProjectionCatchUp measures how fast a subscription feeds the
// stats projection from a standing start over 50,000 stored events (200
// streams), one transaction per batch with its checkpoint: apply=event
// runs one INSERT ... ON CONFLICT per event (Apply), apply=batch one
// multi-row upsert per batch (ApplyBatch).
//
//	go test -run '^$' -bench ProjectionCatchUp -benchtime 3x ./es/postgres/
func BenchmarkProjectionCatchUp(b *testing.B) {
	const n = 50_000
	pool := pgtest.Pool(b)
	s := pgtest.NewStoreWithPool(b, pool, postgres.Config{})
	ctx := context.Background()
	appendMany(ctx, b, s, n)
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE "+postgres.EventsTable(s)); err != nil {
		b.Fatal(err)
	}
	for _, apply := range []string{"event", "batch"} {
		for _, batch := range []int{256, 1000} {
			b.Run(fmt.Sprintf("apply=%s/batch=%d", apply, batch), func(b *testing.B) {
				p := statsProjection("stats")
				if apply == "batch" {
					p = batchStatsProjection("stats")
				}
				c := s.Consumer(p)
				if _, err := c.Checkpoint(ctx); err != nil {
					b.Fatal(err)
				}
				reset := `TRUNCATE ` + pgx.Identifier{s.Schema(), "stream_stats"}.Sanitize() + `;
					DELETE FROM ` + pgx.Identifier{s.Schema(), "checkpoints"}.Sanitize()
				var elapsed time.Duration
				for b.Loop() {
					if _, err := pool.Exec(ctx, reset, pgx.QueryExecModeSimpleProtocol); err != nil {
						b.Fatal(err)
					}
					start := time.Now()
					catchUp(ctx, b, s, c, es.SubscriptionConfig{BatchSize: batch})
					elapsed += time.Since(start)
				}
				b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "events/s")
			})
		}
	}
}
