package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

func TestConformance(t *testing.T) {
	estest.TestStore(t, func(t *testing.T) es.Store { return pgtest.NewStore(t, postgres.Config{}) })
}

func newEvent(typ string, n int) es.EventData {
	return es.EventData{ID: es.NewID(), Type: typ, SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

func newEvents(typ string, count int) []es.EventData {
	out := make([]es.EventData, count)
	for i := range out {
		out[i] = newEvent(typ, i)
	}
	return out
}

// sleepRandomly holds the transaction open for 10-200 ms, one time in
// three.
func sleepRandomly(ctx context.Context, _ pgx.Tx) error {
	if rand.IntN(3) != 0 {
		return nil
	}
	select {
	case <-time.After(time.Duration(10+rand.IntN(191)) * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestReadAllNeverSkips has 8 writers append 20,000 events while some of
// their transactions stay open for 10-200 ms, both after reserving their
// positions and before committing, so that transactions commit out of
// position order all the time. A reader tails ReadAll from the last
// position it saw, as a subscription would: it must see every event
// exactly once, in increasing position order.
func TestReadAllNeverSkips(t *testing.T) {
	const writers, total = 8, 20_000
	s := postgres.WithTestHooks(pgtest.NewStore(t, postgres.Config{}), sleepRandomly, sleepRandomly)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()

	var (
		remaining atomic.Int64
		acked     sync.Map // event ID -> true, once its append returned
		ackedN    atomic.Int64
		wg        sync.WaitGroup
	)
	remaining.Store(total)
	for w := range writers {
		wg.Go(func() {
			for {
				n := int64(1 + rand.IntN(100))
				if left := remaining.Add(-n); left < 0 {
					n += left
					if n <= 0 {
						return
					}
				}
				evs := newEvents("Written", int(n))
				// Mostly one stream, sometimes two at once.
				appends := []es.StreamAppend{{StreamID: fmt.Sprintf("w%d-%d", w, rand.IntN(10)), Expected: es.AnyVersion, Events: evs}}
				if n > 1 && rand.IntN(4) == 0 {
					appends[0].Events = evs[:n/2]
					appends = append(appends, es.StreamAppend{StreamID: fmt.Sprintf("shared-%d", rand.IntN(5)), Expected: es.AnyVersion, Events: evs[n/2:]})
				}
				if _, err := s.Append(ctx, appends...); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				for _, e := range evs {
					acked.Store(e.ID, true)
				}
				ackedN.Add(n)
			}
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()

	notify := s.Notify(ctx)
	poll := time.NewTicker(25 * time.Millisecond)
	defer poll.Stop()
	seen := make(map[string]bool, total)
	var last int64
	reads, done := 0, false
	for !done || len(seen) < total {
		select {
		case <-writersDone:
			writersDone = nil
			done = true // from now on, read until everything is seen
		case <-notify:
		case <-poll.C:
		case <-ctx.Done():
			t.Fatalf("timed out having seen %d of %d events: a skipped event never comes back", len(seen), total)
		}
		// After the writers finish, every acknowledged event is committed;
		// transactions elsewhere in the cluster may still hold ReadAll
		// back for a while, but an event the reader skipped would never
		// be read, and the deadline above would catch it.
		for e, err := range s.ReadAll(ctx, es.AllQuery{After: last}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Position <= last {
				t.Fatalf("position %d read after position %d", e.Position, last)
			}
			if seen[e.ID] {
				t.Fatalf("event %s read twice", e.ID)
			}
			seen[e.ID] = true
			last = e.Position
		}
		reads++
	}
	if t.Failed() {
		return
	}
	if len(seen) != total || ackedN.Load() != total {
		t.Errorf("read %d events, %d acknowledged, want %d", len(seen), ackedN.Load(), total)
	}
	missing := 0
	acked.Range(func(id, _ any) bool {
		if !seen[id.(string)] {
			missing++
		}
		return true
	})
	if missing > 0 {
		t.Fatalf("the reader skipped %d acknowledged events", missing)
	}
	t.Logf("%d events read in %d reads while 8 writers appended", len(seen), reads)
}

// TestKilledConnection terminates the append's backend at two points of
// its transaction: nothing may be written, the error must say what
// happened, and the next append must succeed.
func TestKilledConnection(t *testing.T) {
	for _, point := range []string{"after reserve", "before commit"} {
		t.Run(point, func(t *testing.T) {
			pool := pgtest.Pool(t)
			var armed atomic.Bool
			kill := func(ctx context.Context, tx pgx.Tx) error {
				if !armed.Load() {
					return nil
				}
				var pid int32
				if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
					return err
				}
				// From another connection of the pool.
				if _, err := pool.Exec(context.Background(), "SELECT pg_terminate_backend($1)", pid); err != nil {
					return err
				}
				return nil
			}
			s := postgres.WithTestHooks(pgtest.NewStoreWithPool(t, pool, postgres.Config{}), kill, nil)
			if point == "before commit" {
				s = postgres.WithTestHooks(s, nil, kill)
			}
			ctx := context.Background()
			if _, err := es.Append(ctx, s, "bystander-1", es.NoStream, newEvent("Existed", 0)); err != nil {
				t.Fatal(err)
			}

			evs := newEvents("Big", 2_000)
			armed.Store(true)
			_, err := es.Append(ctx, s, "victim-1", es.NoStream, evs...)
			armed.Store(false)
			if err == nil {
				t.Fatal("append on a terminated connection succeeded")
			}
			if errors.Is(err, es.ErrConcurrency) || errors.Is(err, es.ErrDuplicateEventID) {
				t.Fatalf("got %v, want a connection error", err)
			}
			t.Logf("error: %v", err)

			if got, _ := es.Collect(s.ReadStream(ctx, "victim-1", es.StreamQuery{})); len(got) != 0 {
				t.Fatalf("the killed append left %d events", len(got))
			}
			var streams int
			if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{s.Schema(), "streams"}.Sanitize()+
				" WHERE stream_id = 'victim-1'").Scan(&streams); err != nil {
				t.Fatal(err)
			}
			if streams != 0 {
				t.Fatal("the killed append left its stream row")
			}
			res, err := es.Append(ctx, s, "victim-1", es.NoStream, evs...)
			if err != nil {
				t.Fatalf("append after the kill: %v", err)
			}
			if res.Version != int64(len(evs)) {
				t.Fatalf("append after the kill = %+v, want version %d", res, len(evs))
			}
			all, err := es.Collect(s.ReadAll(ctx, es.AllQuery{}))
			if err != nil || len(all) != len(evs)+1 {
				t.Fatalf("read all = %d events (%v), want %d", len(all), err, len(evs)+1)
			}
		})
	}
}

// TestConcurrentMigrations runs the migration from several goroutines at
// once on a schema that does not exist yet.
func TestConcurrentMigrations(t *testing.T) {
	pool := pgtest.Pool(t)
	ctx := context.Background()
	schema := fmt.Sprintf("es_test_migrate_%d", rand.Int64())
	t.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Error(err)
		}
	})
	const migrators = 4
	start := make(chan struct{})
	errs := make([]error, migrators)
	var wg sync.WaitGroup
	for i := range migrators {
		wg.Go(func() {
			<-start
			errs[i] = postgres.Migrate(ctx, pool, schema)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	if err := postgres.Migrate(ctx, pool, schema); err != nil {
		t.Fatalf("migrating again: %v", err)
	}
	s, err := postgres.New(ctx, pool, postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := es.Append(ctx, s, "after-1", es.NoStream, newEvent("Migrated", 1)); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentIdenticalAppends: identical retries racing each other all
// succeed with the same result, and the events are stored once.
func TestConcurrentIdenticalAppends(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	evs := newEvents("Paid", 3)
	const racers = 8
	results := make([]es.AppendResult, racers)
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { results[i], errs[i] = es.Append(ctx, s, "payment-1", es.NoStream, evs...) })
	}
	wg.Wait()
	written := 0
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if !results[i].Repeated {
			written++
		}
		a, b := results[i], results[0]
		a.Repeated, b.Repeated = false, false
		if a != b {
			t.Fatalf("racer %d got %+v, racer 0 got %+v", i, results[i], results[0])
		}
	}
	if written != 1 {
		t.Fatalf("%d racers wrote the events, want 1 (the others repeat it)", written)
	}
	if got, _ := es.Collect(s.ReadAll(ctx, es.AllQuery{})); len(got) != 3 {
		t.Fatalf("store holds %d events, want 3", len(got))
	}
}

// TestConcurrentSameIDOtherStreams: one event ID appended to different
// streams at once is stored once; every other append fails with
// ErrDuplicateEventID, including those that lose the race on the unique
// index rather than finding the event in their lookup.
func TestConcurrentSameIDOtherStreams(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	ev := newEvent("Claimed", 1)
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { _, errs[i] = es.Append(ctx, s, fmt.Sprintf("claim-%d", i), es.NoStream, ev) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, es.ErrDuplicateEventID):
			t.Errorf("got %v, want es.ErrDuplicateEventID", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d appends stored the event, want 1", won)
	}
}

// TestAppendTx writes events and another row in one caller-owned
// transaction, and refuses a transaction that wrote before the events.
func TestAppendTx(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx := context.Background()
	outbox := pgx.Identifier{s.Schema(), "side_effects"}.Sanitize()
	if _, err := pool.Exec(ctx, "CREATE TABLE "+outbox+" (msg text)"); err != nil {
		t.Fatal(err)
	}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "order-1", Expected: es.NoStream, Events: newEvents("Placed", 2)}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "INSERT INTO "+outbox+" VALUES ('order placed')")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := es.Collect(s.ReadAll(ctx, es.AllQuery{})); len(got) != 2 {
		t.Fatalf("read all = %d events, want 2", len(got))
	}

	// Rolled back: neither the events nor the row.
	errRollback := errors.New("rollback")
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "order-2", Expected: es.NoStream, Events: newEvents("Placed", 1)}); err != nil {
			return err
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	if got, _ := es.Collect(s.ReadStream(ctx, "order-2", es.StreamQuery{})); len(got) != 0 {
		t.Fatalf("a rolled-back AppendTx left %d events", len(got))
	}

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+outbox+" VALUES ('first')"); err != nil {
			return err
		}
		_, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "order-3", Expected: es.NoStream, Events: newEvents("Placed", 1)})
		return err
	})
	if !errors.Is(err, postgres.ErrNotFirstWrite) {
		t.Fatalf("AppendTx after another write: got %v, want ErrNotFirstWrite", err)
	}
}

func TestObserver(t *testing.T) {
	estest.TestStoreObserver(t, func(t *testing.T, o es.StoreObserver) es.Store {
		return pgtest.NewStore(t, postgres.Config{Observer: o})
	})
}

// gather flattens a registry's counters and histogram counts into
// name{labels} -> value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			name := f.GetName()
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[name] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[name+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestNotifyReconnects terminates the LISTEN connection: the store must
// reconnect and keep signalling appends.
func TestNotifyReconnects(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ch := s.Notify(ctx)
	waitSignal(ctx, t, s, ch)

	// Kill every connection that listens on the store's channel.
	if _, err := pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = $1`, "LISTEN "+pgx.Identifier{s.Schema()}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	// Drain the signal the reconnection sends, then require a fresh one.
	waitSignal(ctx, t, s, ch)
	waitSignal(ctx, t, s, ch)
}

// waitSignal appends until ch signals.
func waitSignal(ctx context.Context, t *testing.T, s *postgres.Store, ch <-chan struct{}) {
	t.Helper()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ch:
			return
		case <-tick.C:
			if _, err := es.Append(ctx, s, "bell-1", es.AnyVersion, newEvent("Rang", 0)); err != nil {
				t.Fatal(err)
			}
		case <-ctx.Done():
			t.Fatal("no signal")
		}
	}
}

// TestGlobalOrderKeepsStreamOrder: appends racing for the same streams
// take their versions and their positions in the same order, so ReadAll
// yields each stream's events in version order. (Projections that keep a
// stream's latest state depend on it.)
func TestGlobalOrderKeepsStreamOrder(t *testing.T) {
	s := postgres.WithTestHooks(pgtest.NewStore(t, postgres.Config{}), sleepRandomly, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				a := es.StreamAppend{StreamID: fmt.Sprintf("hot-%d", rand.IntN(3)), Expected: es.AnyVersion, Events: newEvents("Bumped", 1+rand.IntN(5))}
				b := es.StreamAppend{StreamID: fmt.Sprintf("hot-%d", 3+rand.IntN(3)), Expected: es.AnyVersion, Events: newEvents("Bumped", 1)}
				if _, err := s.Append(ctx, a, b); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	last := map[string]int64{}
	n := 0
	for e, err := range s.ReadAll(ctx, es.AllQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Version != last[e.StreamID]+1 {
			t.Fatalf("stream %s: version %d at position %d follows version %d", e.StreamID, e.Version, e.Position, last[e.StreamID])
		}
		last[e.StreamID] = e.Version
		n++
	}
	t.Logf("%d events in global order, every stream in version order", n)
}

// TestReadAllWaitsForEarlierAppend: an append that has reserved its
// positions and not yet written them holds back a later append that
// commits first. Without ReadAll's filter (or with an appender that the
// horizon took for a foreign transaction) the reader would see the later
// events, move past the earlier positions, and skip them.
func TestReadAllWaitsForEarlierAppend(t *testing.T) {
	reserved, resume := make(chan struct{}), make(chan struct{})
	var blocked atomic.Bool
	hold := func(ctx context.Context, _ pgx.Tx) error {
		if blocked.CompareAndSwap(false, true) {
			close(reserved)
			<-resume
		}
		return nil
	}
	s := postgres.WithTestHooks(pgtest.NewStore(t, postgres.Config{}), hold, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// On failure, let the held append finish before the schema is dropped.
	unblock := sync.OnceFunc(func() { close(resume) })
	defer unblock()

	early, late := newEvents("Early", 3), newEvents("Late", 3)
	errc := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, es.StreamAppend{StreamID: "early", Expected: es.AnyVersion, Events: early})
		errc <- err
	}()
	<-reserved
	if _, err := s.Append(ctx, es.StreamAppend{StreamID: "late", Expected: es.AnyVersion, Events: late}); err != nil {
		t.Fatal(err)
	}
	for e, err := range s.ReadAll(ctx, es.AllQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		t.Fatalf("read %s (%s at %d) while an earlier append is in flight", e.ID, e.Type, e.Position)
	}
	unblock()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	var types []string
	var last int64
	for e, err := range s.ReadAll(ctx, es.AllQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Position <= last {
			t.Fatalf("position %d after %d", e.Position, last)
		}
		last = e.Position
		types = append(types, e.Type)
	}
	if want := "Early Early Early Late Late Late"; strings.Join(types, " ") != want {
		t.Fatalf("read %v, want %s", types, want)
	}
}

func TestMigrateRefusesASchemaOfANewerRelease(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	q := pgx.Identifier{s.Schema()}.Sanitize()
	if _, err := s.Pool().Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); !errors.Is(err, es.ErrNewerSchema) {
		t.Fatalf("Migrate = %v, want ErrNewerSchema", err)
	}
}

// TestStoreRefusesASchemaOfANewerReleaseWithoutMigrate: a process that
// never calls Migrate (it left that to a deployment step) must not write
// to, or read, a schema that a newer release has changed: every operation
// on the tables fails with ErrNewerSchema, and nothing is written.
func TestStoreRefusesASchemaOfANewerReleaseWithoutMigrate(t *testing.T) {
	pool := pgtest.Pool(t)
	migrated := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx := context.Background()
	if _, err := es.Append(ctx, migrated, "acct-1", es.NoStream, newEvent("Opened", 1)); err != nil {
		t.Fatal(err)
	}
	q := pgx.Identifier{migrated.Schema()}.Sanitize()
	if _, err := pool.Exec(ctx, `INSERT INTO `+q+`.schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	s, err := postgres.New(ctx, pool, postgres.Config{Schema: migrated.Schema()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, es.ErrNewerSchema) {
			t.Errorf("%s = %v, want ErrNewerSchema", what, err)
		}
	}
	_, err = es.Append(ctx, s, "acct-2", es.NoStream, newEvent("Opened", 1))
	check("Append", err)
	_, err = s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{{ID: es.NewID(), Type: "M", SchemaVersion: 1, Data: []byte(`{}`)}}})
	check("AppendEnqueue", err)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		_, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "acct-3", Expected: es.NoStream, Events: []es.EventData{newEvent("Opened", 1)}})
		return err
	})
	check("AppendTx", err)
	_, err = es.Collect(s.ReadStream(ctx, "acct-1", es.StreamQuery{}))
	check("ReadStream", err)
	_, err = es.Collect(s.ReadAll(ctx, es.AllQuery{}))
	check("ReadAll", err)
	_, err = s.Head(ctx)
	check("Head", err)
	check("SaveCheckpoint", s.SaveCheckpoint(ctx, "sub", 1))
	_, err = s.LoadCheckpoint(ctx, "sub")
	check("LoadCheckpoint", err)
	_, err = s.Due(ctx, time.Now(), []int{0}, 10)
	check("Due", err)
	check("MarkDelivered", s.MarkDelivered(ctx, 1))
	_, err = s.Inbox().Handle(ctx, "c", es.NewID(), func(context.Context) error { return nil })
	check("Inbox.Handle", err)
	check("SetupProjection", s.SetupProjection(ctx, statsProjection("stats")))

	var events, messages, checkpoints int
	if err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM `+q+`.events), (SELECT count(*) FROM `+q+`.outbox), (SELECT count(*) FROM `+q+`.checkpoints)`).
		Scan(&events, &messages, &checkpoints); err != nil {
		t.Fatal(err)
	}
	if events != 1 || messages != 0 || checkpoints != 0 {
		t.Fatalf("the schema holds %d events, %d messages, %d checkpoints; want only the event appended before", events, messages, checkpoints)
	}
	if err := s.Migrate(ctx); !errors.Is(err, es.ErrNewerSchema) {
		t.Fatalf("Migrate = %v, want ErrNewerSchema", err)
	}
}

// TestSchemaCheckWaitsForMigrate: a store used before its schema exists
// fails on the missing tables, and does not remember that: once another
// process has migrated, it works.
func TestSchemaCheckWaitsForMigrate(t *testing.T) {
	pool := pgtest.Pool(t)
	schema := pgtest.Schema(t, pool)
	ctx := context.Background()
	s, err := postgres.New(ctx, pool, postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := es.Append(ctx, s, "acct-1", es.NoStream, newEvent("Opened", 1)); err == nil {
		t.Fatal("Append before the schema exists succeeded")
	} else if errors.Is(err, es.ErrNewerSchema) {
		t.Fatalf("Append before the schema exists = %v, a newer schema", err)
	}
	if err := postgres.Migrate(ctx, pool, schema); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, s, "acct-1", es.NoStream, newEvent("Opened", 1)); err != nil {
		t.Fatalf("Append after another process migrated: %v", err)
	}
}

// TestNewRefusesAnInvalidConfig: New checks the whole configuration,
// inline projections included, before it returns a store, so that a
// mistake shows at start-up and not at the first append or migration.
func TestNewRefusesAnInvalidConfig(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.Pool(t)
	ok := statsProjection("stats")
	with := func(f func(*postgres.Projection)) postgres.Projection { p := ok; f(&p); return p }
	for name, cfg := range map[string]postgres.Config{
		"schema name too long":             {Schema: strings.Repeat("s", 64)},
		"schema name with a NUL":           {Schema: "es\x00"},
		"inline projection without a name": {Inline: []postgres.Projection{with(func(p *postgres.Projection) { p.Name = "" })}},
		"inline projection without Setup":  {Inline: []postgres.Projection{with(func(p *postgres.Projection) { p.Setup = nil })}},
		"inline projection, long table":    {Inline: []postgres.Projection{with(func(p *postgres.Projection) { p.Tables = []string{strings.Repeat("t", 64)} })}},
		"inline projection given twice":    {Inline: []postgres.Projection{ok, ok}},
	} {
		if s, err := postgres.New(ctx, pool, cfg); !errors.Is(err, es.ErrInvalidConfig) {
			if err == nil {
				s.Close()
			}
			t.Errorf("%s: New = %v, want ErrInvalidConfig", name, err)
		}
	}
	if _, err := postgres.New(ctx, nil, postgres.Config{}); !errors.Is(err, es.ErrInvalidConfig) {
		t.Errorf("nil pool: New = %v, want ErrInvalidConfig", err)
	}
}

// TestCommitCutShortIsAnUnknownOutcome cancels the context once the events
// are in the transaction, right before COMMIT: the client cannot know
// whether the server committed, and the error says so. A retry with the
// same event IDs then tells.
func TestCommitCutShortIsAnUnknownOutcome(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := postgres.WithTestHooks(pgtest.NewStore(t, postgres.Config{}), nil, func(context.Context, pgx.Tx) error {
		cancel()
		return nil
	})
	evs := []es.EventData{newEvent("Paid", 1), newEvent("Paid", 2)}
	_, err := es.Append(ctx, s, "pay-1", es.NoStream, evs...)
	if !errors.Is(err, es.ErrOutcomeUnknown) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Append = %v, want ErrOutcomeUnknown and context.Canceled", err)
	}
	s = postgres.WithTestHooks(s, nil, nil)
	res, err := es.Append(context.Background(), s, "pay-1", es.NoStream, evs...)
	if err != nil || res.Version != 2 {
		t.Fatalf("retry = %+v, %v; want the events at version 2, stored now or before", res, err)
	}
	// A business refusal by the server is not unknown.
	if _, err := es.Append(context.Background(), s, "pay-1", es.NoStream, newEvent("Paid", 3)); errors.Is(err, es.ErrOutcomeUnknown) || !errors.Is(err, es.ErrConcurrency) {
		t.Fatalf("conflict = %v", err)
	}
}

// TestRefusedAppendTxWritesNothing checks both refusals of a caller's
// transaction: they leave no trace, not even the row of a new stream.
func TestRefusedAppendTxWritesNothing(t *testing.T) {
	s := pgtest.NewStore(t, postgres.Config{})
	ctx := context.Background()
	pool := s.Pool()
	streams := pgx.Identifier{s.Schema(), "streams"}.Sanitize()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "first-1", Expected: es.NoStream, Events: newEvents("Placed", 1)}); err != nil {
			return err
		}
		// A second append with events in the same transaction is refused.
		_, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "second-1", Expected: es.NoStream, Events: newEvents("Placed", 1)})
		if !errors.Is(err, postgres.ErrNotFirstWrite) {
			t.Errorf("second AppendTx = %v, want ErrNotFirstWrite", err)
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+streams+` WHERE stream_id = 'second-1'`).Scan(&n); err != nil {
			return err
		}
		if n != 0 {
			t.Errorf("the refused append left %d stream rows", n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range []pgx.TxIsoLevel{pgx.RepeatableRead, pgx.Serializable} {
		err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: level}, func(tx pgx.Tx) error {
			_, err := s.AppendTx(ctx, tx, es.StreamAppend{StreamID: "iso-1", Expected: es.NoStream, Events: newEvents("Placed", 1)})
			return err
		})
		if !errors.Is(err, postgres.ErrNotReadCommitted) {
			t.Errorf("AppendTx in a %s transaction = %v, want ErrNotReadCommitted", level, err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+streams+` WHERE stream_id IN ('second-1', 'iso-1')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("refused appends left %d stream rows (%v)", n, err)
	}
}

func TestUnreadableEvent(t *testing.T) {
	// Metadata whose extra values are not strings: another tool's idea of
	// metadata.
	estest.TestUnreadableEvent(t, unreadableRow(`{"extra":{"n":5}}`, "now()"))
}

func TestUnreadableRecordedAt(t *testing.T) {
	estest.TestUnreadableEvent(t, unreadableRow(`{}`, "'infinity'"))
}

// unreadableRow returns a store for estest.TestUnreadableEvent whose
// corrupt function inserts a row with the given metadata and recorded_at
// (an SQL expression) by raw SQL.
func unreadableRow(metadata, recordedAt string) func(t *testing.T) (es.Store, func(string, int64)) {
	return func(t *testing.T) (es.Store, func(string, int64)) {
		s := pgtest.NewStore(t, postgres.Config{})
		return s, func(stream string, version int64) {
			t.Helper()
			ctx := context.Background()
			q := pgx.Identifier{s.Schema()}.Sanitize()
			err := pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `UPDATE `+q+`.streams SET version = $1 WHERE stream_id = $2`, version, stream); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO `+q+`.events (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at)
					VALUES ($1, $2, $3, 'Read', 1, '{}', $4, `+recordedAt+`)`, stream, version, es.NewID(), metadata)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestForeignTransactionsDoNotHoldReadAllBack opens transactions that hold
// IDs and append nothing — one in another database of the cluster, one in
// this database, one holding an unrelated advisory lock — and keeps them
// open while an append commits: ReadAll, Head and Due must see the append
// at once. A transaction that holds the writer lock counts as a possible
// writer and holds the log back until it ends.
func TestForeignTransactionsDoNotHoldReadAllBack(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx := context.Background()
	cfg := pool.Config().ConnConfig.Copy()
	cfg.Database = "postgres"
	other, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	for i, conn := range []interface {
		Begin(context.Context) (pgx.Tx, error)
	}{other, pool, pool} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // the test only needs it open
		q := "SELECT pg_current_xact_id()"
		if i == 2 {
			q = "SELECT pg_advisory_xact_lock(42), pg_current_xact_id()"
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{{ID: es.NewID(), Key: "k", Type: "Seen", SchemaVersion: 1, Data: []byte(`{}`)}}},
		es.StreamAppend{StreamID: "seen-1", Expected: es.NoStream, Events: []es.EventData{newEvent("Seen", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := es.Collect(s.ReadAll(ctx, es.AllQuery{})); err != nil || len(got) != 1 {
		t.Fatalf("ReadAll = %d events, %v, with foreign transactions open; want the append", len(got), err)
	}
	if head, err := s.Head(ctx); err != nil || head != res[0].Position {
		t.Fatalf("Head = %d, %v; want %d", head, err, res[0].Position)
	}
	if due, err := s.Due(ctx, time.Now().Add(time.Hour), []int{es.MessageBucket("k")}, 10); err != nil || len(due) != 1 {
		t.Fatalf("Due = %d messages, %v, with foreign transactions open; want 1", len(due), err)
	}

	// A transaction with an ID and the writer lock may be a writer.
	locker, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(ctx) //nolint:errcheck // ended below
	if _, err := locker.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1), pg_current_xact_id()", postgres.WriterLockKey(s)); err != nil {
		t.Fatal(err)
	}
	if _, err := es.Append(ctx, s, "seen-2", es.NoStream, newEvent("Seen", 2)); err != nil {
		t.Fatal(err)
	}
	if got, _ := es.Collect(s.ReadAll(ctx, es.AllQuery{})); len(got) != 1 {
		t.Fatalf("ReadAll = %d events while a possible writer is open, want 1", len(got))
	}
	if err := locker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := es.Collect(s.ReadAll(ctx, es.AllQuery{})); len(got) != 2 {
		t.Fatalf("ReadAll = %d events after it ended, want 2", len(got))
	}
}

// TestHorizonKeepsCommittingWriter replays, deterministically, the pg_locks
// that let ConcurrentTail skip events (docs/horizon-notes.md): a writer in
// flight in the snapshot whose rows pg_locks copied on both sides of its
// ProcArrayEndTransaction, so that its ID lock shows one
// virtualtransaction and its writer lock another ("B/n" and "B/0"). The
// horizon must still stop at the writer. A lock held by a prepared
// transaction (pid NULL) must make every in-flight transaction count.
func TestHorizonKeepsCommittingWriter(t *testing.T) {
	pool := pgtest.Pool(t)
	s := pgtest.NewStoreWithPool(t, pool, postgres.Config{})
	ctx := context.Background()
	// A writer in flight, and a foreign transaction in flight before it.
	var ids [2]string
	for i, q := range []string{"SELECT pg_current_xact_id()::text",
		"SELECT pg_current_xact_id()::text FROM (SELECT pg_advisory_xact_lock_shared($1)) AS l"} {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // the test only needs it open
		var args []any
		if i == 1 {
			args = append(args, postgres.WriterLockKey(s))
		}
		if err := tx.QueryRow(ctx, q, args...).Scan(&ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	foreign, writer := ids[0], ids[1]
	// pg_locks with the writer's advisory rows shown under another
	// virtualtransaction, as a copy that straddles its commit shows them.
	straddled := `(SELECT l.locktype, l.database, l.classid, l.objid, l.objsubid, l.pid, l.transactionid, l.mode, l.granted,
			CASE WHEN l.locktype = 'advisory' AND l.pid = w.pid THEN split_part(l.virtualtransaction, '/', 1) || '/0'
				ELSE l.virtualtransaction END AS virtualtransaction
		FROM pg_locks AS l,
			(SELECT pid FROM pg_locks WHERE locktype = 'transactionid' AND transactionid = '` + writer + `'::xid) AS w)`
	prepared := `(SELECT locktype, database, classid, objid, objsubid, pid, transactionid, mode, granted FROM pg_locks
		UNION ALL SELECT 'virtualxid', NULL, NULL, NULL, NULL, NULL, NULL, 'ExclusiveLock', true)`
	for _, c := range []struct {
		name, locks, want string
	}{
		{"pg_locks", "pg_locks", writer},
		{"straddled", straddled, writer},
		{"prepared", prepared, foreign},
	} {
		var h string
		q := postgres.HorizonWithLocks(s, c.locks) + `SELECT (SELECT h FROM horizon)::text`
		if err := pool.QueryRow(ctx, q).Scan(&h); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// Other developers' transactions may hold the horizon lower still.
		if hv, wv := mustInt(t, h), mustInt(t, c.want); hv > wv {
			t.Errorf("%s: horizon %s, want at most %s (foreign %s, writer %s)", c.name, h, c.want, foreign, writer)
		}
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
