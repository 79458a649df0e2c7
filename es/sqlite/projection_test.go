package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"esgo.dev/es"
	"esgo.dev/es/esprom"
	"esgo.dev/es/sqlite"
)

// counted is the test events' type: an amount counted into a stream.
type counted struct {
	N int64 `json:"n"`
}

func tallyRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[counted](reg, "Counted")
	return reg
}

func countedEvent(n int64) es.EventData {
	return es.EventData{ID: es.NewID(), Type: "Counted", SchemaVersion: 1, Data: fmt.Appendf(nil, `{"n":%d}`, n)}
}

// tallyRow is what the tally projection keeps per stream. A lost event
// shows in events and sum, a doubled one too, and Apply refuses an event
// whose version does not follow last.
type tallyRow struct {
	Events, Sum, Last int64
}

// errNegative is what the tally projection fails with on a negative
// amount, for the tests of failing Apply.
var errNegative = errors.New("negative amount")

// tallyProjection counts events per stream into table "tally" and logs
// each applied event's position with the applying process in "applied"
// (whose primary key refuses an event applied twice).
func tallyProjection(name string) sqlite.Projection {
	reg := tallyRegistry()
	pid := os.Getpid()
	return sqlite.Projection{
		Name:   name,
		Tables: []string{"tally", "applied"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `
				CREATE TABLE IF NOT EXISTS `+t.Name("tally")+` (
					stream_id TEXT PRIMARY KEY, events INTEGER NOT NULL, sum INTEGER NOT NULL, last INTEGER NOT NULL);
				CREATE TABLE IF NOT EXISTS `+t.Name("applied")+` (
					position INTEGER PRIMARY KEY, pid INTEGER NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("applied", "pid")+` ON `+t.Name("applied")+` (pid, position)`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			c, err := es.Decode[counted](reg, e)
			if err != nil {
				return err
			}
			if c.N < 0 {
				return errNegative
			}
			var last int64
			err = tx.QueryRowContext(ctx, `SELECT last FROM `+t.Name("tally")+` WHERE stream_id = ?`, e.StreamID).Scan(&last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if e.Version != last+1 {
				return fmt.Errorf("%s: version %d after %d: an event applied twice or skipped", e.StreamID, e.Version, last)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO `+t.Name("tally")+` (stream_id, events, sum, last) VALUES (?, 1, ?, ?)
				ON CONFLICT (stream_id) DO UPDATE SET events = events + 1, sum = sum + excluded.sum, last = excluded.last`,
				e.StreamID, c.N, e.Version); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO `+t.Name("applied")+` (position, pid) VALUES (?, ?)`, e.Position, pid)
			return err
		},
	}
}

// foldTally computes the tally from scratch from every stored event.
func foldTally(t testing.TB, s *sqlite.Store) map[string]tallyRow {
	t.Helper()
	reg := tallyRegistry()
	out := map[string]tallyRow{}
	for e, err := range s.ReadAll(context.Background(), es.AllQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		c, err := es.Decode[counted](reg, e)
		if err != nil {
			t.Fatal(err)
		}
		r := out[e.StreamID]
		r.Events++
		r.Sum += c.N
		r.Last = e.Version
		out[e.StreamID] = r
	}
	return out
}

func readTally(t testing.TB, db *sql.DB) map[string]tallyRow {
	t.Helper()
	rows, err := db.Query(`SELECT stream_id, events, sum, last FROM tally`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]tallyRow{}
	for rows.Next() {
		var id string
		var r tallyRow
		if err := rows.Scan(&id, &r.Events, &r.Sum, &r.Last); err != nil {
			t.Fatal(err)
		}
		out[id] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkTally compares the read model with the fold of all events, and
// the applied log with the events' positions.
func checkTally(t testing.TB, s *sqlite.Store) {
	t.Helper()
	want, got := foldTally(t, s), readTally(t, s.DB())
	if !maps.Equal(got, want) {
		n := 0
		for id, w := range want {
			if got[id] != w && n < 10 {
				t.Errorf("%s: read model %+v, fold %+v", id, got[id], w)
				n++
			}
		}
		t.Fatalf("read model (%d streams) differs from the fold of all events (%d streams)", len(got), len(want))
	}
	var applied, events int64
	if err := s.DB().QueryRow(`SELECT count(*) FROM applied`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		events += w.Events
	}
	if applied != events {
		t.Fatalf("%d events applied, %d stored", applied, events)
	}
}

// waitCaughtUp waits until the checkpoint called name reaches the head.
func waitCaughtUp(t testing.TB, s *sqlite.Store, name string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		head, err := s.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := s.LoadCheckpoint(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if cp == head {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %s at %d, head at %d after %v", name, cp, head, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runSubscription runs sub until the test ends, and fails the test if it
// stops with an error.
func runSubscription(t testing.TB, sub *es.Subscription) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sub.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("subscription: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// appendTally appends n counted events to streams "tally-0".."tally-<streams-1>",
// per events at a time.
func appendTally(t testing.TB, s es.Store, n, streams, per int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += per {
		evs := make([]es.EventData, min(per, n-i))
		for j := range evs {
			evs[j] = countedEvent(rand.Int64N(1000))
		}
		if _, err := es.Append(ctx, s, fmt.Sprintf("tally-%d", (i/per)%streams), es.AnyVersion, evs...); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckpointStore(t *testing.T) {
	ctx := context.Background()
	s, _ := openFile(t, sqlite.Config{})
	var _ es.CheckpointStore = s
	var _ es.HeadReader = s
	if cp, err := s.LoadCheckpoint(ctx, "nothing"); err != nil || cp != 0 {
		t.Fatalf("LoadCheckpoint of an unknown name = %d, %v; want 0, nil", cp, err)
	}
	for _, pos := range []int64{7, 3} {
		if err := s.SaveCheckpoint(ctx, "mail", pos); err != nil {
			t.Fatal(err)
		}
		if cp, err := s.LoadCheckpoint(ctx, "mail"); err != nil || cp != pos {
			t.Fatalf("LoadCheckpoint = %d, %v; want %d", cp, err, pos)
		}
	}
	if head, err := s.Head(ctx); err != nil || head != 0 {
		t.Fatalf("Head of an empty store = %d, %v", head, err)
	}
	appendTally(t, s, 5, 2, 2)
	if head, err := s.Head(ctx); err != nil || head != 5 {
		t.Fatalf("Head = %d, %v; want 5", head, err)
	}
}

func TestConsumer(t *testing.T) {
	ctx := context.Background()
	s, _ := openFile(t, sqlite.Config{})
	p := tallyProjection("tally")
	if err := s.SetupProjection(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got := readTally(t, s.DB()); len(got) != 0 {
		t.Fatalf("tally after setup: %v", got)
	}
	appendTally(t, s, 1000, 7, 3)
	c := s.Consumer(p)
	all, err := es.Collect(s.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	// Batches that overlap what was handled, as two instances racing
	// would deliver them: the overlap is skipped, not applied again.
	for _, r := range [][2]int{{0, 100}, {50, 300}, {0, 300}, {299, 1000}} {
		if err := c.Handle(ctx, all[r[0]:r[1]]); err != nil {
			t.Fatalf("Handle %v: %v", r, err)
		}
	}
	if cp, err := c.Checkpoint(ctx); err != nil || cp != all[999].Position {
		t.Fatalf("Checkpoint = %d, %v; want %d", cp, err, all[999].Position)
	}
	checkTally(t, s)

	// A failing Apply leaves nothing of its batch behind.
	if _, err := es.Append(ctx, s, "tally-x", es.AnyVersion, countedEvent(1), countedEvent(-1)); err != nil {
		t.Fatal(err)
	}
	bad, err := es.Collect(s.ReadAll(ctx, es.AllQuery{After: all[999].Position}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Handle(ctx, bad); !errors.Is(err, errNegative) {
		t.Fatalf("Handle = %v, want errNegative", err)
	}
	if cp, _ := c.Checkpoint(ctx); cp != all[999].Position {
		t.Fatalf("checkpoint moved to %d after a failed batch", cp)
	}
	if _, ok := readTally(t, s.DB())["tally-x"]; ok {
		t.Fatal("a failed batch left its first event applied")
	}
}

// TestSetupContract: Setup runs in a transaction of its own before the
// first event, again whenever a consumer or store starts (so it must be
// idempotent), and on the fresh tables of a rebuild.
func TestSetupContract(t *testing.T) {
	ctx := context.Background()
	s, path := openFile(t, sqlite.Config{})
	appendTally(t, s, 10, 2, 1)
	all, err := es.Collect(s.ReadAll(ctx, es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	var setups atomic.Int32
	p := tallyProjection("tally")
	setup := p.Setup
	p.Setup = func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
		setups.Add(1)
		return setup(ctx, tx, t)
	}
	wantSetups := func(n int32) {
		t.Helper()
		if got := setups.Load(); got != n {
			t.Fatalf("Setup ran %d times, want %d", got, n)
		}
	}

	// The first batch fails, yet the tables stay: Setup committed first.
	failing := p
	failing.Apply = func(context.Context, *sql.Tx, sqlite.Tables, es.Event) error { return errNegative }
	if err := s.Consumer(failing).Handle(ctx, all); !errors.Is(err, errNegative) {
		t.Fatalf("Handle = %v, want errNegative", err)
	}
	wantSetups(1)
	if got := readTally(t, s.DB()); len(got) != 0 {
		t.Fatalf("tally after a failed batch: %v", got)
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
	checkTally(t, s)

	// Inline: at every Open.
	for range 2 {
		s2, err := sqlite.Open(ctx, path, sqlite.Config{Inline: []sqlite.Projection{p}})
		if err != nil {
			t.Fatal(err)
		}
		s2.Close()
	}
	wantSetups(6)
}

// TestInlineFillResumed: Open fills an inline projection's new tables
// after Setup, in a transaction of its own; when a crash came in between,
// the next Open fills them.
func TestInlineFillResumed(t *testing.T) {
	ctx := context.Background()
	s, path := openFile(t, sqlite.Config{Inline: []sqlite.Projection{tallyProjection("tally")}})
	appendTally(t, s, 300, 4, 3)
	checkTally(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash after Setup, before the fill, leaves behind.
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM tally; DELETE FROM applied; INSERT INTO es_inline_fills (name) VALUES ('tally')`); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Config{Inline: []sqlite.Projection{tallyProjection("tally")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkTally(t, s)
	var left int
	if err := s.DB().QueryRow(`SELECT count(*) FROM es_inline_fills`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d fills left (%v)", left, err)
	}
	// Opening again fills nothing twice (applied's key would refuse it).
	s2, err := sqlite.Open(ctx, path, sqlite.Config{Inline: []sqlite.Projection{tallyProjection("tally")}})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	checkTally(t, s)
}

// TestSetupAfterRebuild: the live tables' indexes keep the names a
// rebuild gave them, and Setup, run again at the next start, finds them
// through Tables.Index rather than building the same index twice.
func TestSetupAfterRebuild(t *testing.T) {
	ctx := context.Background()
	p := tallyProjection("tally")
	s, path := openFile(t, sqlite.Config{Inline: []sqlite.Projection{p}})
	appendTally(t, s, 20, 2, 1)
	indexes := func() []string {
		t.Helper()
		rows, err := s.DB().Query(`SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'applied' AND sql IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out
	}
	if got := indexes(); len(got) != 1 || got[0] != "applied__pid" {
		t.Fatalf("indexes before a rebuild: %v", got)
	}
	for range 2 {
		if err := s.Rebuild(ctx, p); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		var err error
		if s, err = sqlite.Open(ctx, path, sqlite.Config{Inline: []sqlite.Projection{p}}); err != nil {
			t.Fatal(err)
		}
		if err := s.SetupProjection(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got := indexes(); len(got) != 1 || !strings.HasPrefix(got[0], "applied__rebuild_") {
			t.Fatalf("indexes after a rebuild and a restart: %v, want the rebuild's only", got)
		}
	}
	defer s.Close()
	checkTally(t, s)
}

func TestProjectionValidation(t *testing.T) {
	ctx := context.Background()
	ok := tallyProjection("tally")
	for name, mutate := range map[string]func(*sqlite.Projection){
		"no name":       func(p *sqlite.Projection) { p.Name = "" },
		"no tables":     func(p *sqlite.Projection) { p.Tables = nil },
		"repeated":      func(p *sqlite.Projection) { p.Tables = []string{"a", "A"} },
		"reserved":      func(p *sqlite.Projection) { p.Tables = []string{"es_events"} },
		"nul":           func(p *sqlite.Projection) { p.Tables = []string{"a\x00b"} },
		"no apply func": func(p *sqlite.Projection) { p.Apply = nil },
	} {
		p := ok
		mutate(&p)
		if _, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{p}}); !errors.Is(err, es.ErrInvalidConfig) {
			t.Errorf("%s: Open with the inline projection = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestTablesQuoting(t *testing.T) {
	ctx := context.Background()
	// A table name that would break unquoted SQL.
	weird := `odd "name"; DROP TABLE es_events; --`
	p := sqlite.Projection{
		Name:   "weird",
		Tables: []string{weird},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name(weird)+` (n INTEGER);
				CREATE INDEX IF NOT EXISTS `+t.Index(weird, "n")+` ON `+t.Name(weird)+` (n)`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO `+t.Name(weird)+` (n) VALUES (?)`, e.Position)
			return err
		},
	}
	s, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{p}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendTally(t, s, 3, 1, 1)
	if err := s.Rebuild(ctx, p); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM "odd ""name""; DROP TABLE es_events; --"`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("count = %d, %v; want 3", n, err)
	}
}

func TestInlineProjection(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{tallyProjection("tally")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Read your writes: the read model has the events when Append returns.
	for i := range 20 {
		res, err := s.Append(ctx,
			es.StreamAppend{StreamID: "tally-a", Expected: es.AnyVersion, Events: []es.EventData{countedEvent(int64(i)), countedEvent(1)}},
			es.StreamAppend{StreamID: "tally-b", Expected: es.AnyVersion, Events: []es.EventData{countedEvent(2)}})
		if err != nil {
			t.Fatal(err)
		}
		got := readTally(t, s.DB())
		if got["tally-a"].Last != res[0].Version || got["tally-b"].Last != res[1].Version {
			t.Fatalf("after append %d: read model %v, appended up to %v", i, got, res)
		}
	}
	checkTally(t, s)

	// An Apply error rolls the whole append back, other streams too.
	before := readTally(t, s.DB())
	head, _ := s.Head(ctx)
	_, err = s.Append(ctx,
		es.StreamAppend{StreamID: "tally-b", Expected: es.AnyVersion, Events: []es.EventData{countedEvent(5)}},
		es.StreamAppend{StreamID: "tally-c", Expected: es.AnyVersion, Events: []es.EventData{countedEvent(1), countedEvent(-1)}})
	if !errors.Is(err, errNegative) {
		t.Fatalf("Append = %v, want errNegative", err)
	}
	if after, _ := s.Head(ctx); after != head {
		t.Fatalf("head moved from %d to %d: the failed append was stored", head, after)
	}
	if got := readTally(t, s.DB()); !maps.Equal(got, before) {
		t.Fatalf("read model changed by a failed append: %v, was %v", got, before)
	}
	if _, err := es.Collect(s.ReadStream(ctx, "tally-c", es.StreamQuery{})); err != nil && !errors.Is(err, es.ErrStreamNotFound) {
		t.Fatal(err)
	}
	checkTally(t, s)
}

// TestInlineAddedLater opens a file that already has events with a new
// inline projection: Open fills its tables.
func TestInlineAddedLater(t *testing.T) {
	ctx := context.Background()
	s, path := openFile(t, sqlite.Config{})
	appendTally(t, s, 1234, 5, 7)
	s2, err := sqlite.Open(ctx, path, sqlite.Config{Inline: []sqlite.Projection{tallyProjection("tally")}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	checkTally(t, s2)
	appendTally(t, s2, 10, 5, 1)
	checkTally(t, s2)
}

// TestRebuildInline rebuilds an inline projection while appends go on,
// interrupting it once: the second Rebuild resumes.
func TestRebuildInline(t *testing.T) {
	ctx := context.Background()
	p := tallyProjection("tally")
	s, _ := openFile(t, sqlite.Config{Inline: []sqlite.Projection{p}, Synchronous: sqlite.SyncNormal})
	appendTally(t, s, 10_000, 20, 50)

	stopAppends, appended := appendInBackground(t, s)
	defer stopAppends()

	// The first rebuild is stopped after a few batches.
	rctx, cancel := context.WithCancel(ctx)
	interrupted := p
	interrupted.Apply = func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
		if e.Position > 5000 {
			cancel()
			return ctx.Err()
		}
		return p.Apply(ctx, tx, t, e)
	}
	if err := s.Rebuild(rctx, interrupted); err == nil {
		t.Fatal("interrupted Rebuild returned nil")
	}
	var pos int64
	if err := s.DB().QueryRow(`SELECT position FROM es_rebuilds WHERE name = 'tally'`).Scan(&pos); err != nil || pos < 2000 {
		t.Fatalf("rebuild position after the interruption = %d, %v; want some progress kept", pos, err)
	}
	if err := s.Rebuild(ctx, p); err != nil {
		t.Fatal(err)
	}
	stopAppends()
	if *appended == 0 {
		t.Fatal("nothing appended during the rebuild")
	}
	checkTally(t, s)
	checkNoRebuildLeft(t, s)
}

// appendInBackground appends small batches until stop is called, and
// counts the events appended.
func appendInBackground(t testing.TB, s es.Store) (stop func(), appended *int64) {
	t.Helper()
	var n atomic.Int64
	count := new(int64)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			evs := []es.EventData{countedEvent(rand.Int64N(100)), countedEvent(rand.Int64N(100))}
			if _, err := es.Append(context.Background(), s, fmt.Sprintf("live-%d", i%13), es.AnyVersion, evs...); err != nil {
				t.Errorf("append: %v", err)
				return
			}
			n.Add(int64(len(evs)))
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(done)
			<-finished
			*count = n.Load()
		})
	}
	t.Cleanup(stop)
	return stop, count
}

func checkNoRebuildLeft(t testing.TB, s *sqlite.Store) {
	t.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM es_rebuilds`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rebuilds left in es_rebuilds (%v)", n, err)
	}
	rows, err := s.DB().Query(`SELECT name FROM sqlite_schema WHERE name LIKE '%rebuild%' AND type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var left []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name != "es_rebuilds" {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		t.Fatalf("rebuild tables left: %s", strings.Join(left, ", "))
	}
}

// TestRebuildWhileAppending rebuilds a projection over 100,000 events
// while appends go on and the live consumer runs. Readers of the live
// table never see it shrink (a half-built table would), and after the
// swap the tables equal the fold of all events.
func TestRebuildWhileAppending(t *testing.T) {
	ctx := context.Background()
	total := 100_000
	if testing.Short() {
		total = 10_000
	}
	s, _ := openFile(t, sqlite.Config{Synchronous: sqlite.SyncNormal})
	appendTally(t, s, total, 50, 100)
	p := tallyProjection("tally")
	stopLive := runSubscription(t, es.NewSubscription(p.Name, s, s.Consumer(p), es.SubscriptionConfig{PollInterval: 20 * time.Millisecond}))
	if err := s.SetupProjection(ctx, p); err != nil {
		t.Fatal(err)
	}

	stopAppends, appended := appendInBackground(t, s)
	defer stopAppends()

	// A reader of the live table throughout.
	readerDone := make(chan struct{})
	readerStopped := make(chan struct{})
	var reads atomic.Int64
	go func() {
		defer close(readerStopped)
		var last int64
		for {
			select {
			case <-readerDone:
				return
			default:
			}
			var n int64
			if err := s.DB().QueryRow(`SELECT coalesce(sum(events), 0) FROM tally`).Scan(&n); err != nil {
				t.Errorf("read the live table: %v", err)
				return
			}
			if n < last {
				t.Errorf("live table went from %d events to %d: a reader saw a half-built table", last, n)
				return
			}
			last = n
			reads.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()

	// The rebuilt tables carry a column the old ones lack, to show the swap.
	v2 := p
	v2.Setup = func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("tally")+` (
			stream_id TEXT PRIMARY KEY, events INTEGER NOT NULL, sum INTEGER NOT NULL, last INTEGER NOT NULL,
			rebuilt INTEGER NOT NULL DEFAULT 1)`); err != nil {
			return err
		}
		return p.Setup(ctx, tx, t) // the rest; its tally is there already
	}
	start := time.Now()
	if err := s.Rebuild(ctx, v2); err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuilt %d events in %v", total, time.Since(start))
	stopAppends()
	close(readerDone)
	<-readerStopped
	waitCaughtUp(t, s, p.Name, 60*time.Second)
	stopLive()
	if *appended == 0 {
		t.Fatal("nothing appended during the rebuild")
	}
	t.Logf("%d events appended during the rebuild, %d reads of the live table", *appended, reads.Load())
	checkTally(t, s)
	checkNoRebuildLeft(t, s)
	var rebuilt int
	if err := s.DB().QueryRow(`SELECT count(*) FROM pragma_table_info('tally') WHERE name = 'rebuilt'`).Scan(&rebuilt); err != nil || rebuilt != 1 {
		t.Fatalf("the live tally table is not the rebuilt one (%v)", err)
	}
}

// TestSubscriptionMetrics runs the SQLite consumer under a subscription
// with metrics: position, lag and events move as it handles events.
func TestSubscriptionMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m, err := esprom.NewSubscriptionMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openFile(t, sqlite.Config{})
	appendTally(t, s, 100, 3, 1)
	p := tallyProjection("tally")
	// The second batch waits at the gate, so the lag after the first
	// batch (observed once a batch is handled) can be seen before the
	// subscription catches up.
	gate := make(chan struct{})
	inSecond := make(chan struct{})
	var batches atomic.Int32
	var open sync.Once
	openGate := func() { open.Do(func() { close(gate) }) }
	c := gated{Consumer: s.Consumer(p), wait: func() {
		if batches.Add(1) == 2 {
			close(inSecond)
			<-gate
		}
	}}
	runSubscription(t, es.NewSubscription(p.Name, s, c, es.SubscriptionConfig{BatchSize: 10, Observer: m}))
	// Registered after runSubscription's cleanup, so it runs first: a
	// failed check must not leave the subscription stuck at the gate.
	t.Cleanup(openGate)
	<-inSecond
	if lag := testutil.ToFloat64(m.Lag(p.Name)); lag != 90 {
		t.Fatalf("lag after the first batch = %v, want 90", lag)
	}
	openGate()
	waitCaughtUp(t, s, p.Name, 10*time.Second)
	appendTally(t, s, 5, 3, 1)
	waitCaughtUp(t, s, p.Name, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(m.Events(p.Name)) != 105 || testutil.ToFloat64(m.Position(p.Name)) != 105 {
		if time.Now().After(deadline) {
			t.Fatalf("events = %v, position = %v; want 105, 105",
				testutil.ToFloat64(m.Events(p.Name)), testutil.ToFloat64(m.Position(p.Name)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if lag := testutil.ToFloat64(m.Lag(p.Name)); lag != 0 {
		t.Fatalf("lag after catching up = %v, want 0", lag)
	}
	checkTally(t, s)
	_ = ctx
}

// gated is a Consumer that calls wait before each batch.
type gated struct {
	es.Consumer
	wait func()
}

func (g gated) Handle(ctx context.Context, batch []es.Event) error {
	g.wait()
	return g.Consumer.Handle(ctx, batch)
}

func TestLocker(t *testing.T) {
	ctx := context.Background()
	s, path := openFile(t, sqlite.Config{})
	for name, lockers := range map[string][2]*sqlite.Locker{
		"one locker":         {s.Locker(), s.Locker()},
		"two lockers":        {sqlite.NewLocker(path), sqlite.NewLocker(path)},
		"in memory, one too": {sqlite.NewLocker(""), nil},
	} {
		if lockers[1] == nil {
			lockers[1] = lockers[0]
		}
		_, release, err := lockers[0].Lock(ctx, "es-subscription:x/y")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		if _, _, err := lockers[1].Lock(short, "es-subscription:x/y"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: second Lock = %v while the lease is held", name, err)
		}
		cancel()
		if _, rel, err := lockers[1].Lock(ctx, "other"); err != nil {
			t.Fatalf("%s: a lease of another name: %v", name, err)
		} else {
			rel()
		}
		got := make(chan error, 1)
		go func() {
			_, rel, err := lockers[1].Lock(ctx, "es-subscription:x/y")
			if err == nil {
				rel()
			}
			got <- err
		}()
		release()
		release() // twice is harmless
		select {
		case err := <-got:
			if err != nil {
				t.Fatalf("%s: Lock after release: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Lock still waiting 5s after the release", name)
		}
	}

	// A lease whose lock file is deleted is given up.
	held, release, err := s.Locker().Lock(ctx, "doomed")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.Remove(path + ".lock-doomed"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the lease outlived its lock file")
	}
}

// TestRebuildViewsAndForeignKeys rebuilds, twice, a projection of two
// tables, one referencing the other, under an application's view: the
// swap keeps the references between the fresh tables, and the view reads
// the new tables.
func TestRebuildViewsAndForeignKeys(t *testing.T) {
	ctx := context.Background()
	p := sqlite.Projection{
		Name:   "fk",
		Tables: []string{"parent", "child"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("parent")+` (id INTEGER PRIMARY KEY);
				CREATE TABLE IF NOT EXISTS `+t.Name("child")+` (id INTEGER PRIMARY KEY,
					parent INTEGER NOT NULL REFERENCES `+t.Name("parent")+` (id));
				CREATE INDEX IF NOT EXISTS `+t.Index("child", "parent")+` ON `+t.Name("child")+` (parent)`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO `+t.Name("parent")+` VALUES (?);
				INSERT INTO `+t.Name("child")+` VALUES (?, ?)`, e.Position, e.Position, e.Position)
			return err
		},
	}
	s, path := openFile(t, sqlite.Config{Inline: []sqlite.Projection{p}})
	appendTally(t, s, 10, 2, 1)
	app, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec(`CREATE VIEW family AS SELECT child.id FROM child JOIN parent ON parent.id = child.parent`); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		if err := s.Rebuild(ctx, p); err != nil {
			t.Fatalf("rebuild %d: %v", round, err)
		}
		appendTally(t, s, 10, 2, 1)
		var n, violations int
		if err := s.DB().QueryRow(`SELECT count(*) FROM family`).Scan(&n); err != nil || n != 10+10*round {
			t.Fatalf("rebuild %d: view has %d rows (%v), want %d", round, n, err, 10+10*round)
		}
		if err := s.DB().QueryRow(`SELECT count(*) FROM pragma_foreign_key_check`).Scan(&violations); err != nil || violations != 0 {
			t.Fatalf("rebuild %d: %d foreign key violations (%v)", round, violations, err)
		}
		var ref string
		if err := s.DB().QueryRow(`SELECT "table" FROM pragma_foreign_key_list('child')`).Scan(&ref); err != nil || ref != "parent" {
			t.Fatalf("rebuild %d: child references %q (%v), want parent", round, ref, err)
		}
	}
	checkNoRebuildLeft(t, s)
}
