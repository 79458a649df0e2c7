package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// sharePublisher is the publisher of the children in mode "share": each
// delivery is a row of "deliveries", inserted when it starts and marked
// ended (after life's Delay) when it ends, so the parent can tell whether
// two processes ever delivered messages of one bucket at the same time.
// Deliveries beyond life's budget stall after their row is inserted,
// until released: a process stalled mid-delivery, with its row open.
// Otherwise a delivery that started ends, even when ctx is cancelled (a
// stopping relay cancels it): one cut short would be delivered again, and
// the parent could not tell that repeat from one of a completed delivery.
func sharePublisher(s *postgres.Store, life childLife, released <-chan struct{}) es.Publisher {
	deliveries := pgx.Identifier{s.Schema(), "deliveries"}.Sanitize()
	pid := os.Getpid()
	var count atomic.Int64
	return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
		b := es.MessageBucket(m.Key)
		var id int64
		wctx := context.WithoutCancel(ctx)
		if err := s.Pool().QueryRow(wctx, `INSERT INTO `+deliveries+` (key, n, bucket, grp, pid)
			VALUES ($1, ($2::jsonb->>'n')::int, $3, $4, $5) RETURNING id`,
			m.Key, string(m.Data), b, b%es.RelayGroups, pid).Scan(&id); err != nil {
			return err
		}
		if n := count.Add(1); life.Budget > 0 && n > life.Budget {
			select {
			case <-released:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		time.Sleep(life.Delay)
		_, err := s.Pool().Exec(wctx, `UPDATE `+deliveries+` SET ended = clock_timestamp() WHERE id = $1`, id)
		return err
	})
}

// shareFeeder enqueues, every few milliseconds until stopped, one
// message of each of its keys, which cover every bucket group.
type shareFeeder struct {
	keys []string
	next map[string]int
	stop context.CancelFunc
	done chan struct{}
}

func startShareFeeder(ctx context.Context, t *testing.T, s *postgres.Store) *shareFeeder {
	t.Helper()
	f := &shareFeeder{next: map[string]int{}, done: make(chan struct{})}
	covered := map[int]int{}
	for i := 0; len(covered) < es.RelayGroups || len(f.keys) < 3*es.RelayGroups; i++ {
		k := "s-" + strconv.Itoa(i)
		f.keys = append(f.keys, k)
		covered[es.MessageBucket(k)%es.RelayGroups]++
	}
	ctx, f.stop = context.WithCancel(ctx)
	var failed sync.Once
	go func() {
		defer close(f.done)
		for ctx.Err() == nil {
			var enq es.Enqueue
			for _, k := range f.keys {
				enq.Messages = append(enq.Messages, note(k, f.next[k]))
			}
			// Not cut short by the stop: an append that committed while
			// its context ended would be delivered yet not counted.
			if _, err := s.AppendEnqueue(context.WithoutCancel(ctx), enq); err != nil {
				if ctx.Err() == nil {
					failed.Do(func() { t.Errorf("feeding the outbox: %v", err) })
				}
				continue
			}
			for _, k := range f.keys {
				f.next[k]++
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return f
}

// end stops feeding and returns how many messages of each key it fed.
func (f *shareFeeder) end() map[string]int {
	f.stop()
	<-f.done
	return f.next
}

// TestRelaySharingProcesses runs relays in separate processes on one
// outbox, with a feeder enqueuing messages of every bucket group all the
// while:
//
//   - A, alone, stalls in a delivery; B starts; once A's delivery ends,
//     both deliver (each took some of the groups);
//   - A stops (SIGTERM): B delivers every group;
//   - C starts, and B and C both deliver; C stalls in a delivery and is
//     SIGKILLed there: B delivers every group again, after the server
//     ended C's session and freed its leases.
//
// Then no two processes delivered messages of one bucket at the same
// time (no completed deliveries overlap), each key's messages were
// delivered in order, and the only repeated deliveries are of those
// that did not end (the stalled one killed, or one cut short when a
// lease was lost) or that the killed process made.
func TestRelaySharingProcesses(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	deliveries := pgx.Identifier{s.Schema(), "deliveries"}.Sanitize()
	if _, err := s.Pool().Exec(ctx, `CREATE TABLE `+deliveries+` (id bigserial PRIMARY KEY, key text NOT NULL,
		n int NOT NULL, bucket int NOT NULL, grp int NOT NULL, pid int NOT NULL,
		started timestamptz NOT NULL DEFAULT clock_timestamp(), ended timestamptz)`); err != nil {
		t.Fatal(err)
	}
	// count returns how many deliveries pid started after the delivery
	// mark, and of how many groups.
	count := func(pid int, mark int64) (n, groups int) {
		t.Helper()
		if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT grp) FROM `+deliveries+
			` WHERE pid = $1 AND id > $2`, pid, mark).Scan(&n, &groups); err != nil {
			t.Fatal(err)
		}
		return n, groups
	}
	mark := func() int64 {
		t.Helper()
		var id int64
		if err := s.Pool().QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM `+deliveries).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	until := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case <-ctx.Done():
				t.Fatalf("waiting until %s: %v", what, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	// The waits report how long they took, as figures, not as checks.
	bothDeliver := func(a, b *outboxChild) time.Duration {
		t.Helper()
		start, m := time.Now(), mark()
		until(fmt.Sprintf("processes %d and %d both deliver", a.pid(), b.pid()), func() bool {
			na, _ := count(a.pid(), m)
			nb, _ := count(b.pid(), m)
			return na > 0 && nb > 0
		})
		return time.Since(start)
	}
	deliversAll := func(c *outboxChild) time.Duration {
		t.Helper()
		start, m := time.Now(), mark()
		until(fmt.Sprintf("process %d delivers every group", c.pid()), func() bool {
			_, g := count(c.pid(), m)
			return g == es.RelayGroups
		})
		return time.Since(start)
	}
	const budget = 20
	feeder := startShareFeeder(ctx, t, s)
	life := childLife{Delay: time.Millisecond}

	a := startOutboxChild(t, s.Schema(), "share", childLife{Budget: budget, Delay: time.Millisecond, Workers: 4})
	until("A stalls in a delivery", func() bool { n, _ := count(a.pid(), 0); return n > budget })
	life.Workers = 2
	b := startOutboxChild(t, s.Schema(), "share", life)
	t.Logf("A is process %d, B %d", a.pid(), b.pid())
	a.release(t)
	shared := bothDeliver(a, b)
	a.stop(ctx, t, s.Pool())
	afterStop := deliversAll(b)

	c := startOutboxChild(t, s.Schema(), "share", childLife{Budget: budget, Delay: time.Millisecond, Workers: 3})
	t.Logf("C is process %d", c.pid())
	joined := bothDeliver(b, c)
	until("C stalls in a delivery", func() bool { n, _ := count(c.pid(), 0); return n > budget })
	c.kill(t)
	afterKill := deliversAll(b)
	t.Logf("A and B shared %v after A resumed; B delivered every group %v after A stopped; "+
		"B and C shared %v after C started; B delivered every group %v after C was killed (RebalanceInterval 100ms)",
		shared.Round(time.Millisecond), afterStop.Round(time.Millisecond), joined.Round(time.Millisecond), afterKill.Round(time.Millisecond))

	fed := feeder.end()
	waitForBacklog(ctx, t, s, 0)
	b.stop(ctx, t, s.Pool())
	checkSharing(ctx, t, s, fed, c.pid())
}

// checkSharing checks the deliveries of TestRelaySharingProcesses: fed
// is how many messages of each key were enqueued, killed the process
// killed.
func checkSharing(ctx context.Context, t *testing.T, s *postgres.Store, fed map[string]int, killed int) {
	t.Helper()
	deliveries := pgx.Identifier{s.Schema(), "deliveries"}.Sanitize()
	var overlaps int
	var example string
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), coalesce(min(format('bucket %s: process %s delivered %s %s from %s to %s, process %s %s %s from %s to %s',
			x.bucket, x.pid, x.key, x.n, x.started, x.ended, y.pid, y.key, y.n, y.started, y.ended)), '')
		FROM `+deliveries+` x JOIN `+deliveries+` y ON x.bucket = y.bucket AND x.pid < y.pid
		WHERE x.started < y.ended AND y.started < x.ended`).Scan(&overlaps, &example); err != nil {
		t.Fatal(err)
	}
	if overlaps > 0 {
		t.Errorf("%d deliveries of one bucket by two processes at once, such as: %s", overlaps, example)
	}
	rows, err := s.Pool().Query(ctx, `SELECT key, n, pid, ended IS NOT NULL FROM `+deliveries+` ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	type last struct {
		n     int
		pid   int
		ended bool
	}
	var (
		key            string
		n, pid         int
		ended          bool
		seen           = map[string]last{}
		total, repeats int
		pids           = map[int]int{}
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &n, &pid, &ended}, func() error {
		total++
		pids[pid]++
		prev, ok := seen[key]
		switch {
		case !ok && n != 0:
			return fmt.Errorf("key %s: first delivery is of message %d", key, n)
		case ok && n == prev.n:
			if prev.ended && prev.pid != killed {
				return fmt.Errorf("key %s: message %d delivered again by process %d after process %d delivered it (deliveries %d so far)", key, n, pid, prev.pid, total)
			}
			repeats++
		case ok && n != prev.n+1:
			return fmt.Errorf("key %s: message %d delivered after message %d", key, n, prev.n)
		}
		seen[key] = last{n, pid, ended}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for k, want := range fed {
		if got, ok := seen[k]; !ok || got.n != want-1 {
			t.Errorf("key %s: %d messages fed, the last delivered is %d", k, want, got.n)
		}
	}
	t.Logf("%d deliveries (%d repeated) by %d processes: %v", total, repeats, len(pids), pids)
}

// TestRelayStopsDeliveringWhenItsLeaseIsLost: relay A delivers alone and
// is paused in a delivery when the server ends its lease session. The
// delivery's context is cancelled (so A stops delivering), and the
// message is delivered again, by whichever of A (on a new session) and B
// takes its group next. B starts only once A's delivery was cancelled: a
// lost lease is not a fence (docs/outbox.md), so a relay standing by
// could take the group before A's next check heard of the loss, and the
// order of the two is not what this test is about.
func TestRelayStopsDeliveringWhenItsLeaseIsLost(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{note("k", 0)}}); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		events    []string
		paused    = make(chan struct{})
		cancelled = make(chan struct{})
		again     = make(chan struct{})
		first     sync.Once
		next      sync.Once
	)
	log := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	pub := func(relay string) es.Publisher {
		return es.PublisherFunc(func(ctx context.Context, m es.Message) error {
			pause := false
			first.Do(func() { pause = true })
			if pause {
				log(relay + " starts")
				close(paused)
				<-ctx.Done()
				log(relay + " cancelled")
				close(cancelled)
				return ctx.Err()
			}
			next.Do(func() {
				log("delivered again")
				close(again)
			})
			return nil
		})
	}
	cfg := es.RelayConfig{PollInterval: 5 * time.Millisecond, RebalanceInterval: 50 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)}
	run := func(ctx context.Context, pub es.Publisher) <-chan error {
		c := cfg
		c.Locker = s.Locker()
		done := make(chan error, 1)
		go func() { done <- es.NewRelay(s, pub, c).Run(ctx) }()
		return done
	}
	ctxA, stopA := context.WithCancel(ctx)
	defer stopA()
	doneA := run(ctxA, pub("A"))
	wait := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		}
	}
	wait(paused, "A's delivery")
	terminateLease(ctx, t, pool, s.Schema(), "es-relay:"+fmt.Sprint(es.MessageBucket("k")%es.RelayGroups))
	wait(cancelled, "A's delivery to be cancelled")
	ctxB, stopB := context.WithCancel(ctx)
	defer stopB()
	doneB := run(ctxB, pub("B"))
	wait(again, "the message's next delivery")
	stopA()
	stopB()
	for _, done := range []<-chan error{doneA, doneB} {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(events) != "[A starts A cancelled delivered again]" {
		t.Fatalf("events %v, want A's delivery cancelled before the next", events)
	}
}
