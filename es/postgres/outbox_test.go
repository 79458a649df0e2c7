package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

func TestOutboxConformance(t *testing.T) {
	estest.TestOutbox(t, func(t *testing.T) es.Outbox { return pgtest.NewStore(t, postgres.Config{}) })
}

func TestSnapshots(t *testing.T) {
	estest.TestSnapshots(t, func(t *testing.T) es.Store { return pgtest.NewStore(t, postgres.Config{}) })
}

func TestRelayLease(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	// Two Lockers on one schema, as two processes would have.
	estest.TestRelayLease(t, s, func() es.Locker { return s.Locker() })
}

func TestRelaySharing(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	// A Locker per relay, each with a lease session of its own, as
	// separate processes would have.
	estest.TestRelaySharing(t, s, func() es.Locker { return s.Locker() })
}

// TestRelayKeyOrder has 6 writers enqueue messages of 8 shared keys (and
// one key each of their own) while some of their transactions stay open
// for up to 200 ms after drawing their sequence numbers and before
// committing, so that enqueuers commit out of seq order all the time. A
// relay with 4 workers, whose publisher fails one delivery in five,
// delivers concurrently. Each key's messages must arrive in seq order, and
// each writer's messages of a key in the order written.
func TestRelayKeyOrder(t *testing.T) {
	const writers, perWriter, shared = 6, 150, 8
	s := postgres.WithTestHooks(pgtest.NewStore(t, postgres.Config{}), sleepRandomly, sleepRandomly)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var (
		mu        sync.Mutex
		delivered = map[string][]string{} // key -> message IDs, in delivery order
		failures  atomic.Int64
	)
	pub := es.PublisherFunc(func(_ context.Context, m es.Message) error {
		if rand.IntN(5) == 0 {
			failures.Add(1)
			return errors.New("broker hiccup")
		}
		mu.Lock()
		delivered[m.Key] = append(delivered[m.Key], m.ID)
		mu.Unlock()
		return nil
	})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	relay := es.NewRelay(s, pub, es.RelayConfig{Workers: 4, PollInterval: 5 * time.Millisecond, MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Logger: quiet})
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() { _ = relay.Run(relayCtx); close(relayDone) }()

	type written struct {
		writer, n int
	}
	origin := make([]map[string]written, writers) // per writer: message ID -> (writer, n)
	var wg sync.WaitGroup
	for w := range writers {
		origin[w] = make(map[string]written)
		wg.Go(func() {
			next := map[string]int{}
			for sent := 0; sent < perWriter; {
				var enq es.Enqueue
				for range min(1+rand.IntN(3), perWriter-sent) {
					key := fmt.Sprintf("shared-%d", rand.IntN(shared))
					if rand.IntN(4) == 0 {
						key = fmt.Sprintf("own-%d", w)
					}
					m := note(key, next[key])
					origin[w][m.ID] = written{w, next[key]}
					next[key]++
					enq.Messages = append(enq.Messages, m)
					sent++
				}
				var appends []es.StreamAppend
				if rand.IntN(2) == 0 {
					appends = []es.StreamAppend{{StreamID: fmt.Sprintf("w-%d", w), Expected: es.AnyVersion, Events: newEvents("Sent", 1)}}
				}
				if _, err := s.AppendEnqueue(ctx, enq, appends...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for {
		n, err := s.Backlog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopRelay()
	<-relayDone

	seqs := map[string]int64{}
	rows, err := s.Pool().Query(ctx, `SELECT message_id::text, seq FROM `+pgx.Identifier{s.Schema(), "outbox"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	var (
		id  string
		seq int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &seq}, func() error { seqs[id] = seq; return nil }); err != nil {
		t.Fatal(err)
	}
	total := 0
	for key, msgs := range delivered {
		total += len(msgs)
		lastN := map[int]int{}
		for i, id := range msgs {
			if i > 0 && seqs[id] <= seqs[msgs[i-1]] {
				t.Fatalf("key %s: seq %d delivered after seq %d", key, seqs[id], seqs[msgs[i-1]])
			}
			var o written
			for w := range origin {
				if x, ok := origin[w][id]; ok {
					o = x
				}
			}
			if prev, ok := lastN[o.writer]; (ok && o.n != prev+1) || (!ok && o.n != 0) {
				t.Fatalf("key %s: writer %d's message %d delivered after its %d", key, o.writer, o.n, prev)
			}
			lastN[o.writer] = o.n
		}
	}
	if total != writers*perWriter || len(seqs) != total {
		t.Fatalf("delivered %d messages of %d (%d in the outbox)", total, writers*perWriter, len(seqs))
	}
	t.Logf("%d messages over %d keys delivered in order despite %d failed deliveries", total, len(delivered), failures.Load())
}

// TestDueHorizon checks Due's in-flight filter directly: a transaction
// that holds an ID but enqueues nothing does not hold messages back, but
// an enqueuer that has drawn its seq and not committed holds back every
// message enqueued after it, of its key or not, until it ends.
func TestDueHorizon(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx := context.Background()
	all := make([]int, es.OutboxBuckets)
	for i := range all {
		all[i] = i
	}
	dueIDs := func() []string {
		t.Helper()
		msgs, err := s.Due(ctx, time.Now(), all, 100)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		return ids
	}

	foreign, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Rollback(ctx) //nolint:errcheck // ended below
	if _, err := foreign.Exec(ctx, "SELECT pg_current_xact_id()"); err != nil {
		t.Fatal(err)
	}
	first := note("k", 0)
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{first}}); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(); len(got) != 1 || got[0] != first.ID {
		t.Fatalf("due = %v with a foreign transaction open, want the message", got)
	}

	enqueuer, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer enqueuer.Rollback(ctx) //nolint:errcheck // committed below
	second, third := note("k", 1), note("k", 2)
	if _, err := s.AppendEnqueueTx(ctx, enqueuer, es.Enqueue{Messages: []es.Message{second}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{third}}); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(); len(got) != 1 || got[0] != first.ID {
		t.Fatalf("due = %v while an earlier enqueuer is open, want only the first message", got)
	}
	if err := enqueuer.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dueIDs(); len(got) != 3 || got[1] != second.ID || got[2] != third.ID {
		t.Fatalf("due = %v after the enqueuer committed, want all three in order", got)
	}
	if err := foreign.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRelay measures delivery through the outbox: b.N messages over
// 100 keys, enqueued 100 per transaction beforehand, delivered by a relay
// with 4 workers to a publisher that does nothing. It reports messages
// per second (each costs a Due share and one MarkDelivered).
func BenchmarkRelay(b *testing.B) {
	s := pgtest.NewStore(b, postgres.Config{})
	ctx := context.Background()
	for i := 0; i < b.N; i += 100 {
		var enq es.Enqueue
		for j := i; j < min(i+100, b.N); j++ {
			enq.Messages = append(enq.Messages, note(fmt.Sprintf("k-%d", j%100), j/100))
		}
		if _, err := s.AppendEnqueue(ctx, enq); err != nil {
			b.Fatal(err)
		}
	}
	var delivered atomic.Int64
	pub := es.PublisherFunc(func(context.Context, es.Message) error { delivered.Add(1); return nil })
	relayCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() {
		_ = es.NewRelay(s, pub, es.RelayConfig{Workers: 4, PollInterval: 10 * time.Millisecond}).Run(relayCtx)
		close(done)
	}()
	for delivered.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	stop()
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// TestRelayLeasesSmallPool: leases hold connections of their own, so a
// relay whose 4 workers all hold a lease still delivers through a pool
// of 2 connections. When leases took pool connections it stalled for good.
func TestRelayLeasesSmallPool(t *testing.T) {
	cfg, err := pgxpool.ParseConfig(pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close) // after the schema is dropped
	if err := pool.Ping(ctx); err != nil {
		if pgtest.Required() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	const total = 200
	want := make(map[string]bool, total)
	for i := 0; i < total; i += 20 {
		var enq es.Enqueue
		for j := i; j < i+20; j++ {
			m := note(fmt.Sprintf("k-%d", j%10), j/10)
			enq.Messages = append(enq.Messages, m)
			want[m.ID] = true
		}
		if _, err := s.AppendEnqueue(ctx, enq); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu        sync.Mutex
		delivered = make(map[string]bool, total)
		all       = make(chan struct{})
	)
	pub := es.PublisherFunc(func(_ context.Context, m es.Message) error {
		mu.Lock()
		defer mu.Unlock()
		delivered[m.ID] = true
		if len(delivered) == total {
			close(all)
		}
		return nil
	})
	relayCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = es.NewRelay(s, pub, es.RelayConfig{Workers: 4, Locker: s.Locker(), PollInterval: 20 * time.Millisecond}).Run(relayCtx)
	}()
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		n := len(delivered)
		mu.Unlock()
		t.Fatalf("delivered %d of %d messages through a pool of 2 with 4 leased workers", n, total)
	}
	stop()
	<-done
	for id := range delivered {
		if !want[id] {
			t.Fatalf("delivered unknown message %s", id)
		}
	}
}
