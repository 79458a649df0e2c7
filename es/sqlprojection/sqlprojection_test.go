package sqlprojection_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlprojection"
)

// The ledger is the read model of the portable projection test: accounts
// opened by owners, money deposited and withdrawn, accounts closed. It
// keeps two tables, accounts (with an index by owner) and owners, whose
// row per owner Apply recomputes with a query of accounts after every
// event. Every account event must follow the account's last version, so
// an event applied twice or skipped fails Apply.

type (
	accountOpened struct {
		Owner string `json:"owner"`
	}
	moneyMoved struct {
		Amount int64 `json:"amount"`
	}
)

func ledger() sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "ledger",
		Tables: []string{"accounts", "owners"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `
				CREATE TABLE IF NOT EXISTS `+t.Name("accounts")+` (
					account_id   TEXT    PRIMARY KEY,
					owner        TEXT    NOT NULL,
					balance      BIGINT  NOT NULL DEFAULT 0,
					movements    INTEGER NOT NULL DEFAULT 0,
					closed       BOOLEAN NOT NULL DEFAULT FALSE,
					last_version BIGINT  NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("accounts", "by_owner")+` ON `+t.Name("accounts")+` (owner, account_id);
				CREATE TABLE IF NOT EXISTS `+t.Name("owners")+` (
					owner         TEXT    PRIMARY KEY,
					accounts      INTEGER NOT NULL,
					open_accounts INTEGER NOT NULL,
					balance       BIGINT  NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			accounts := t.Name("accounts")
			var owner string
			var last int64
			err := tx.QueryRow(ctx, `SELECT owner, last_version FROM `+accounts+` WHERE account_id = $1`, e.StreamID).Scan(&owner, &last)
			switch {
			case e.Type == "AccountOpened" && errors.Is(err, sql.ErrNoRows):
			case e.Type == "Noise":
				return nil // not an event of the ledger
			case err != nil:
				return fmt.Errorf("%s %s v%d: %w", e.StreamID, e.Type, e.Version, err)
			case e.Version != last+1:
				return fmt.Errorf("%s: version %d after %d: an event applied twice or skipped", e.StreamID, e.Version, last)
			}

			switch e.Type {
			case "AccountOpened":
				var d accountOpened
				if err := json.Unmarshal(e.Data, &d); err != nil {
					return err
				}
				owner = d.Owner
				// An upsert whose placeholders are not in order of
				// appearance: SQLite must bind them by number.
				_, err = tx.Exec(ctx, `INSERT INTO `+accounts+` AS a (account_id, owner, last_version) VALUES ($3, $1, $2)
					ON CONFLICT (account_id) DO UPDATE SET owner = excluded.owner, last_version = excluded.last_version`,
					owner, e.Version, e.StreamID)
			case "Deposited", "Withdrawn":
				var d moneyMoved
				if err := json.Unmarshal(e.Data, &d); err != nil {
					return err
				}
				if e.Type == "Withdrawn" {
					d.Amount = -d.Amount
				}
				var n int64
				n, err = tx.Exec(ctx, `UPDATE `+accounts+` SET balance = balance + $2, movements = movements + 1,
					last_version = $3 WHERE account_id = $1 AND NOT closed`, e.StreamID, d.Amount, e.Version)
				if err == nil && n != 1 {
					err = fmt.Errorf("%s: %d accounts updated, want 1 (closed?)", e.StreamID, n)
				}
			case "AccountClosed":
				_, err = tx.Exec(ctx, `UPDATE `+accounts+` SET closed = $1, last_version = $2 WHERE account_id = $3`,
					true, e.Version, e.StreamID)
			default:
				return fmt.Errorf("unknown event type %s", e.Type)
			}
			if err != nil {
				return err
			}
			return refreshOwner(ctx, tx, t, owner)
		},
	}
}

// refreshOwner recomputes an owner's row from the owner's accounts.
func refreshOwner(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, owner string) error {
	rows, err := tx.Query(ctx, `SELECT balance, closed FROM `+t.Name("accounts")+` WHERE owner = $1 ORDER BY account_id`, owner)
	if err != nil {
		return err
	}
	var n, open, balance int64
	for rows.Next() {
		var b int64
		var closed bool
		if err := rows.Scan(&b, &closed); err != nil {
			rows.Close()
			return err
		}
		n++
		balance += b
		if !closed {
			open++
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// The same sum in SQL, cast as portable SQL must (PostgreSQL's SUM of
	// BIGINT is NUMERIC).
	var sum int64
	if err := tx.QueryRow(ctx, `SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) FROM `+t.Name("accounts")+` WHERE owner = $1`,
		owner).Scan(&sum); err != nil {
		return err
	}
	if sum != balance {
		return fmt.Errorf("owner %s: SUM(balance) = %d, rows add up to %d", owner, sum, balance)
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("owners")+` AS o (owner, accounts, open_accounts, balance) VALUES ($1, $2, $3, $4)
		ON CONFLICT (owner) DO UPDATE SET accounts = excluded.accounts, open_accounts = excluded.open_accounts,
			balance = excluded.balance`, owner, n, open, balance)
	return err
}

// view is what the ledger's tables hold, read back in key order.
type view struct {
	Accounts []account
	Owners   []owner
}

type account struct {
	ID, Owner          string
	Balance, Movements int64
	Closed             bool
	LastVersion        int64
}

type owner struct {
	Owner                  string
	Accounts, Open, Amount int64
}

// history is a random but reproducible sequence of appends for the
// ledger: accounts opened, money moved, accounts closed, and noise.
type history [][]es.StreamAppend

func newHistory(seed uint64, appends int) history {
	rng := rand.New(rand.NewPCG(seed, 1))
	type acct struct {
		version int64
		closed  bool
	}
	accts := map[string]*acct{}
	var ids []string
	var h history
	event := func(typ string, data any) es.EventData {
		b, err := json.Marshal(data)
		if err != nil {
			panic(err)
		}
		return es.EventData{ID: es.NewID(), Type: typ, SchemaVersion: 1, Data: b}
	}
	for range appends {
		var batch []es.StreamAppend
		for range 1 + rng.IntN(3) { // multi-stream appends too
			var sa es.StreamAppend
			switch r := rng.IntN(20); {
			case r == 0:
				sa = es.StreamAppend{StreamID: "noise", Expected: es.AnyVersion, Events: []es.EventData{event("Noise", struct{}{})}}
			case r < 4 || len(ids) == 0:
				id := fmt.Sprintf("acct-%03d", len(ids))
				ids = append(ids, id)
				accts[id] = &acct{version: 1}
				sa = es.StreamAppend{StreamID: id, Expected: es.NoStream,
					Events: []es.EventData{event("AccountOpened", accountOpened{Owner: fmt.Sprintf("owner-%d", rng.IntN(7))})}}
			default:
				id := ids[rng.IntN(len(ids))]
				a := accts[id]
				if a.closed || slices.ContainsFunc(batch, func(x es.StreamAppend) bool { return x.StreamID == id }) {
					continue
				}
				sa = es.StreamAppend{StreamID: id, Expected: es.AnyVersion}
				for range 1 + rng.IntN(4) {
					switch r := rng.IntN(10); {
					case r == 0:
						sa.Events = append(sa.Events, event("AccountClosed", struct{}{}))
						a.closed = true
					case r < 4:
						sa.Events = append(sa.Events, event("Withdrawn", moneyMoved{Amount: rng.Int64N(100)}))
					default:
						sa.Events = append(sa.Events, event("Deposited", moneyMoved{Amount: rng.Int64N(1000)}))
					}
					a.version++
					if a.closed {
						break
					}
				}
			}
			if sa.StreamID == "noise" && slices.ContainsFunc(batch, func(x es.StreamAppend) bool { return x.StreamID == "noise" }) {
				continue
			}
			batch = append(batch, sa)
		}
		if len(batch) > 0 {
			h = append(h, batch)
		}
	}
	return h
}

// fold is the view the ledger must arrive at after h, computed in Go.
func (h history) fold() view {
	accts := map[string]*account{}
	for _, batch := range h {
		for _, sa := range batch {
			for _, e := range sa.Events {
				a := accts[sa.StreamID]
				switch e.Type {
				case "AccountOpened":
					var d accountOpened
					_ = json.Unmarshal(e.Data, &d)
					a = &account{ID: sa.StreamID, Owner: d.Owner}
					accts[sa.StreamID] = a
				case "Deposited", "Withdrawn":
					var d moneyMoved
					_ = json.Unmarshal(e.Data, &d)
					if e.Type == "Withdrawn" {
						d.Amount = -d.Amount
					}
					a.Balance += d.Amount
					a.Movements++
				case "AccountClosed":
					a.Closed = true
				default:
					continue
				}
				a.LastVersion++
			}
		}
	}
	var v view
	owners := map[string]*owner{}
	for _, a := range accts {
		v.Accounts = append(v.Accounts, *a)
		o := owners[a.Owner]
		if o == nil {
			o = &owner{Owner: a.Owner}
			owners[a.Owner] = o
		}
		o.Accounts++
		o.Amount += a.Balance
		if !a.Closed {
			o.Open++
		}
	}
	for _, o := range owners {
		v.Owners = append(v.Owners, *o)
	}
	slices.SortFunc(v.Accounts, func(a, b account) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(v.Owners, func(a, b owner) int { return strings.Compare(a.Owner, b.Owner) })
	return v
}

func (h history) appendTo(ctx context.Context, t testing.TB, s es.Store) {
	t.Helper()
	for _, batch := range h {
		if _, err := s.Append(ctx, batch...); err != nil {
			t.Fatal(err)
		}
	}
}

// harness runs the ledger on one store, so that one test drives both.
type harness interface {
	es.Store
	es.HeadReader
	consumer() es.Consumer
	rebuild(ctx context.Context) error
	// db is the test's own connection to the store's database, which
	// names the ledger's tables as readers do, without qualification.
	db() *sql.DB
	// indexesQuery lists the indexes of the accounts table other than
	// its primary key's.
	indexesQuery() string
	// reopen opens the store again, on the same tables, as a restarted
	// process would.
	reopen(t testing.TB) harness
}

// opener opens a harness on a store, with the ledger inline or not.
type opener func(t testing.TB, inline bool, p sqlprojection.Projection) harness

// TestPortableProjection runs one projection, the ledger, on both stores
// in all three modes: a consumer fed by a subscription, inline in every
// append, and rebuilt (twice, then set up again by a restart). Every run
// ends with the same tables: the fold of the events.
func TestPortableProjection(t *testing.T) {
	h := newHistory(42, 300)
	want := h.fold()
	first, second := h[:len(h)/2], h[len(h)/2:]
	var largest atomic.Int64 // the largest batch ApplyBatch was given
	for mode, p := range map[string]sqlprojection.Projection{"one by one": ledger(), "in batches": batched(ledger(), &largest)} {
		for name, open := range map[string]opener{"sqlite": openSQLite, "postgres": openPostgres} {
			t.Run(mode+"/"+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()

				t.Run("consumer", func(t *testing.T) {
					s := open(t, false, p)
					first.appendTo(ctx, t, s)
					stop := runConsumer(ctx, t, s, s.consumer())
					second.appendTo(ctx, t, s)
					waitCaughtUp(ctx, t, s, s.consumer())
					stop()
					check(t, s, want)
					t.Run("rebuild", func(t *testing.T) { rebuildTwice(ctx, t, s, want) })
				})

				t.Run("inline", func(t *testing.T) {
					s := open(t, true, p)
					h.appendTo(ctx, t, s)
					check(t, s, want)

					// A refused event rolls the whole append back.
					before, err := s.Head(ctx)
					if err != nil {
						t.Fatal(err)
					}
					_, err = s.Append(ctx,
						es.StreamAppend{StreamID: "noise", Expected: es.AnyVersion, Events: []es.EventData{
							{ID: es.NewID(), Type: "Noise", SchemaVersion: 1, Data: []byte(`{}`)}}},
						es.StreamAppend{StreamID: "acct-999", Expected: es.NoStream, Events: []es.EventData{
							{ID: es.NewID(), Type: "Deposited", SchemaVersion: 1, Data: []byte(`{"amount":5}`)}}})
					if !errors.Is(err, sql.ErrNoRows) {
						t.Fatalf("append to an account never opened = %v, want an error matching sql.ErrNoRows", err)
					}
					check(t, s, want)
					if head, err := s.Head(ctx); err != nil || head != before {
						t.Fatalf("head after a refused append = %d, %v; want %d", head, err, before)
					}
					t.Run("rebuild", func(t *testing.T) { rebuildTwice(ctx, t, s, want) })
				})
			})
		}
	}
	if largest.Load() < 2 {
		t.Errorf("ApplyBatch was given batches of at most %d events: the batch path was not exercised", largest.Load())
	}
}

// batched is p with ApplyBatch in place of Apply: the same effects, one
// call per batch. largest records the largest batch seen.
func batched(p sqlprojection.Projection, largest *atomic.Int64) sqlprojection.Projection {
	apply := p.Apply
	p.Apply = nil
	p.ApplyBatch = func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, events []es.Event) error {
		for {
			n := largest.Load()
			if int64(len(events)) <= n || largest.CompareAndSwap(n, int64(len(events))) {
				break
			}
		}
		for _, e := range events {
			if err := apply(ctx, tx, t, e); err != nil {
				return err
			}
		}
		return nil
	}
	return p
}

// rebuildTwice spoils the live tables, rebuilds them twice and reopens
// the store, which runs Setup again on the rebuilt tables: the view is
// back to want, and Setup found the rebuild's index instead of adding one.
func rebuildTwice(ctx context.Context, t *testing.T, s harness, want view) {
	t.Helper()
	exec(t, s.db(), `INSERT INTO owners (owner, accounts, open_accounts, balance) VALUES ('bogus', 1, 1, 1)`)
	exec(t, s.db(), `UPDATE accounts SET balance = balance + 1`)
	for range 2 {
		if err := s.rebuild(ctx); err != nil {
			t.Fatal(err)
		}
		check(t, s, want)
	}
	s = s.reopen(t)
	c := s.consumer()
	if _, err := c.Checkpoint(ctx); err != nil { // runs Setup
		t.Fatal(err)
	}
	check(t, s, want)
	if idx := collect(t, s.db(), s.indexesQuery()); len(idx) != 1 {
		t.Fatalf("indexes on accounts after rebuilds and a restart: %v, want one", idx)
	}
}

func check(t testing.TB, s harness, want view) {
	t.Helper()
	if diff := cmp.Diff(want, readView(t, s.db())); diff != "" {
		t.Fatalf("view differs from the fold of the events (-fold +view):\n%s", diff)
	}
}

func readView(t testing.TB, db *sql.DB) view {
	t.Helper()
	var v view
	rows, err := db.Query(`SELECT account_id, owner, balance, movements, closed, last_version FROM accounts ORDER BY account_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var a account
		if err := rows.Scan(&a.ID, &a.Owner, &a.Balance, &a.Movements, &a.Closed, &a.LastVersion); err != nil {
			t.Fatal(err)
		}
		v.Accounts = append(v.Accounts, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows, err = db.Query(`SELECT owner, accounts, open_accounts, balance FROM owners ORDER BY owner`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var o owner
		if err := rows.Scan(&o.Owner, &o.Accounts, &o.Open, &o.Amount); err != nil {
			t.Fatal(err)
		}
		v.Owners = append(v.Owners, o)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return v
}

func exec(t testing.TB, db *sql.DB, query string) {
	t.Helper()
	if _, err := db.Exec(query); err != nil {
		t.Fatal(err)
	}
}

// runConsumer runs c in a subscription until the returned stop is called.
func runConsumer(ctx context.Context, t testing.TB, s harness, c es.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- es.NewSubscription("ledger", s, c, es.SubscriptionConfig{}).Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscription: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// waitCaughtUp waits until c's checkpoint reaches the store's head.
func waitCaughtUp(ctx context.Context, t testing.TB, s harness, c es.Consumer) {
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
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The SQLite harness: a file, so that the test can write to the live
// tables through a connection of its own.

type sqliteHarness struct {
	*sqlite.Store
	path   string
	inline bool
	conn   *sql.DB
	proj   sqlprojection.Projection
}

func openSQLite(t testing.TB, inline bool, p sqlprojection.Projection) harness {
	return reopenSQLite(t, filepath.Join(t.TempDir(), "es.db"), inline, p)
}

func reopenSQLite(t testing.TB, path string, inline bool, p sqlprojection.Projection) harness {
	t.Helper()
	var cfg sqlite.Config
	if inline {
		cfg.Inline = []sqlite.Projection{sqlite.FromPortable(p)}
	}
	s, err := sqlite.Open(context.Background(), path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	conn, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sqliteHarness{Store: s, path: path, inline: inline, conn: conn, proj: p}
}

func (h *sqliteHarness) consumer() es.Consumer { return h.Consumer(sqlite.FromPortable(h.proj)) }

func (h *sqliteHarness) rebuild(ctx context.Context) error {
	return h.Rebuild(ctx, sqlite.FromPortable(h.proj))
}

func (h *sqliteHarness) db() *sql.DB { return h.conn }

func (h *sqliteHarness) indexesQuery() string {
	return `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'accounts' AND sql IS NOT NULL`
}

func (h *sqliteHarness) reopen(t testing.TB) harness {
	t.Helper()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	return reopenSQLite(t, h.path, h.inline, h.proj)
}

// The PostgreSQL harness: a schema of the test's own, and a database/sql
// connection whose search path is that schema.

type postgresHarness struct {
	*postgres.Store
	pool   *pgxpool.Pool
	inline bool
	conn   *sql.DB
	proj   sqlprojection.Projection
}

func openPostgres(t testing.TB, inline bool, p sqlprojection.Projection) harness {
	t.Helper()
	pool := pgtest.Pool(t)
	var sc postgres.Config
	if inline {
		sc.Inline = []postgres.Projection{postgres.FromPortable(p)}
	}
	s := pgtest.NewStoreWithPool(t, pool, sc)
	cfg := pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = s.Schema()
	conn := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { conn.Close() })
	return &postgresHarness{Store: s, pool: pool, inline: inline, conn: conn, proj: p}
}

func (h *postgresHarness) consumer() es.Consumer { return h.Consumer(postgres.FromPortable(h.proj)) }

func (h *postgresHarness) rebuild(ctx context.Context) error {
	return h.Rebuild(ctx, postgres.FromPortable(h.proj))
}

func (h *postgresHarness) db() *sql.DB { return h.conn }

func (h *postgresHarness) indexesQuery() string {
	return `SELECT indexname FROM pg_indexes
		WHERE schemaname = current_schema() AND tablename = 'accounts' AND indexname <> 'accounts_pkey'`
}

func (h *postgresHarness) reopen(t testing.TB) harness {
	t.Helper()
	var cfg postgres.Config
	if h.inline {
		cfg.Inline = []postgres.Projection{postgres.FromPortable(h.proj)}
	}
	s, err := postgres.New(context.Background(), h.pool, postgres.Config{Schema: h.Schema(), Inline: cfg.Inline})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil { // runs the inline projection's Setup
		t.Fatal(err)
	}
	return &postgresHarness{Store: s, pool: h.pool, inline: h.inline, conn: h.conn, proj: h.proj}
}

func collect(t testing.TB, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidate(t *testing.T) {
	long := strings.Repeat("x", 64)
	for name, mutate := range map[string]func(*sqlprojection.Projection){
		"no name":       func(p *sqlprojection.Projection) { p.Name = "" },
		"no setup":      func(p *sqlprojection.Projection) { p.Setup = nil },
		"no apply":      func(p *sqlprojection.Projection) { p.Apply = nil },
		"no tables":     func(p *sqlprojection.Projection) { p.Tables = nil },
		"upper case":    func(p *sqlprojection.Projection) { p.Tables = []string{"Accounts"} },
		"digit first":   func(p *sqlprojection.Projection) { p.Tables = []string{"1accounts"} },
		"quote":         func(p *sqlprojection.Projection) { p.Tables = []string{`a"b`} },
		"too long":      func(p *sqlprojection.Projection) { p.Tables = []string{long} },
		"repeated":      func(p *sqlprojection.Projection) { p.Tables = []string{"a", "a"} },
		"es prefix":     func(p *sqlprojection.Projection) { p.Tables = []string{"es_events"} },
		"sqlite prefix": func(p *sqlprojection.Projection) { p.Tables = []string{"sqlite_stat1"} },
		"pg prefix":     func(p *sqlprojection.Projection) { p.Tables = []string{"pg_class"} },
	} {
		p := ledger()
		mutate(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
	}
	if err := ledger().Validate(); err != nil {
		t.Fatal(err)
	}
	p := ledger()
	p.Tables = []string{long[:63], "a_1"}
	if err := p.Validate(); err != nil {
		t.Fatalf("63 bytes: %v", err)
	}
}

// TestExampleOnBothStores runs the package example's projection, whose
// upsert refers to the existing row through a table alias, on both stores.
func TestExampleOnBothStores(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{sqlite.FromPortable(seatsSold())}})
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pool := pgtest.Pool(t)
	pg := pgtest.NewStoreWithPool(t, pool, postgres.Config{Inline: []postgres.Projection{postgres.FromPortable(seatsSold())}})
	for _, s := range []es.Store{lite, pg} {
		for _, seats := range []int{2, 3} {
			if _, err := es.Append(ctx, s, "reservation-"+es.NewID(), es.NoStream, es.EventData{
				ID: es.NewID(), Type: "SeatsReserved", SchemaVersion: 1,
				Data: fmt.Appendf(nil, `{"concert":"Warsaw","seats":%d}`, seats),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var onSQLite, onPostgres int64
	if err := lite.DB().QueryRow(`SELECT seats FROM seats_sold WHERE concert = 'Warsaw'`).Scan(&onSQLite); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `SELECT seats FROM `+pgx.Identifier{pg.Schema(), "seats_sold"}.Sanitize()+` WHERE concert = 'Warsaw'`).Scan(&onPostgres); err != nil {
		t.Fatal(err)
	}
	if onSQLite != 5 || onPostgres != 5 {
		t.Fatalf("seats sold: %d on SQLite, %d on PostgreSQL; want 5", onSQLite, onPostgres)
	}
}

// TestAdaptersValidate: both stores refuse a projection that is not
// portable before its Setup runs, so no table of it is created anywhere.
func TestAdaptersValidate(t *testing.T) {
	ctx := context.Background()
	p := ledger()
	p.Tables = []string{"Accounts", "owners"}
	if _, err := sqlite.OpenMemory(ctx, sqlite.Config{Inline: []sqlite.Projection{sqlite.FromPortable(p)}}); err == nil || !strings.Contains(err.Error(), "portable") {
		t.Errorf("SQLite: Open with a projection that is not portable: %v", err)
	}
	s := pgtest.NewStore(t, postgres.Config{})
	if err := s.SetupProjection(ctx, postgres.FromPortable(p)); err == nil || !strings.Contains(err.Error(), "portable") {
		t.Errorf("PostgreSQL: SetupProjection of a projection that is not portable: %v", err)
	}
}
