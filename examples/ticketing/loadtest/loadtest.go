// Package loadtest plays a flash sale on the ticketing example: a concert
// of Seats seats and Buyers buyers at once, Concurrency of them active at
// a time, each through the same code paths as a real buyer: app.New with
// every module running, RegisterUser, AddToCart, ChooseDelivery and
// Checkout, then the order process (seats held by the reservations module,
// a payment through the finance module's fake gateway, seats confirmed,
// tickets issued and e-mailed to a mailer that discards them). A fraction
// of the buyers abandon their payment: their bank never answers, their
// holds run out and the expiry process frees their seats for others.
//
// A buyer first looks at the concert's seats left, as its page shows
// them (read from the inventory's stream), and leaves if the type it
// wants is sold out: most of a stadium's buyers come after the last seat
// went, and they are turned away by the page, not by a checkout. Those
// who check out wait for the answer to their order (completed, rejected
// as sold out, or cancelled), as told by the order's own stream. At the end,
// Run checks the sale against the event store itself, not the read
// models: the seats of the held and confirmed reservations, folded from
// the reservations' streams, per ticket type, against the capacity (the
// oversell, which must be 0), and against the inventory's own count.
//
// The command is `go run ./examples/ticketing loadtest`; a test runs a
// small sale.
package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/postgres"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/users"
)

// Config configures a sale. The zero value plays the default sale on
// SQLite: each field says its default.
type Config struct {
	// Store is "sqlite" (default) or "postgres".
	Store string
	// DSN is the PostgreSQL connection string (default $ES_POSTGRES_DSN,
	// then postgres://postgres@127.0.0.1:5432/test?sslmode=disable). The
	// sale gets a schema of its own, dropped at the end.
	DSN string
	// DB is the SQLite file: the events' and the read models' with
	// Store "sqlite", the read models' with "postgres" (default: a file in
	// a new temporary directory, removed at the end).
	DB string
	// Seats is the concert's capacity (default 50,000): a tenth VIP, the
	// rest general admission.
	Seats int
	// Buyers is how many buyers come (default 200,000). Each wants 1 to 4
	// tickets of one type, VIP for one in ten.
	Buyers int
	// Concurrency is how many buyers are active at once (default 32).
	Concurrency int
	// Duration, when positive, stops the sale early: no buyer starts after
	// it. The buyers already started are still answered.
	Duration time.Duration
	// Hold is how long a reservation holds its seats (default 10s): short,
	// so that abandoned reservations expire during the sale. An order
	// waits a quarter more for its payment.
	Hold time.Duration
	// Abandon is the fraction of buyers whose payment never completes
	// (default 0; negative means none).
	Abandon float64
	// RelayWorkers is how many relay workers deliver messages (default 2
	// on SQLite, whose one writer every worker waits for, so that more
	// workers deliver less; 8 on PostgreSQL, where they write in
	// parallel). The PostgreSQL pool gets a connection for each worker and
	// each active buyer, unless the DSN sets pool_max_conns.
	RelayWorkers int
	// ReadModels runs the app's read models (its SQL projections, each a
	// subscription) during the sale, as app.Run does. Off by default: no
	// buyer reads them, and on SQLite their writes share the one writer
	// with the sale's.
	ReadModels bool
	// Seed seeds the buyers' choices (default 1).
	Seed uint64
	// Progress receives a line every second while the sale runs (default:
	// none).
	Progress io.Writer
	// Logger receives the app's warnings (default: discarded).
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	c.Store = cmp.Or(c.Store, "sqlite")
	if c.Store != "sqlite" && c.Store != "postgres" {
		return c, fmt.Errorf("loadtest: store %q: want sqlite or postgres", c.Store)
	}
	if c.Store == "postgres" && c.DSN == "" {
		c.DSN = cmp.Or(os.Getenv("ES_POSTGRES_DSN"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	}
	c.Seats = cmp.Or(c.Seats, 50_000)
	c.Buyers = cmp.Or(c.Buyers, 200_000)
	c.Concurrency = cmp.Or(c.Concurrency, 32)
	c.Hold = cmp.Or(c.Hold, 10*time.Second)
	if c.RelayWorkers == 0 {
		c.RelayWorkers = 2
		if c.Store == "postgres" {
			c.RelayWorkers = 8
		}
	}
	c.Seed = cmp.Or(c.Seed, 1)
	if c.Seats < 10 || c.Buyers < 1 || c.Concurrency < 1 || c.Hold < 0 || c.Duration < 0 || c.Abandon > 1 || c.RelayWorkers < 1 {
		return c, fmt.Errorf("loadtest: want at least 10 seats, a buyer, a concurrency of 1, an abandon fraction up to 1 and no negative durations")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Result is what a sale did.
type Result struct {
	// Config is the configuration the sale ran with, defaults filled in.
	Config Config
	// Started is how many buyers started (fewer than Config.Buyers when
	// Duration stopped the sale early); Stopped reports that it did.
	Started int
	Stopped bool
	// The buyers' answers: TurnedAway (the concert's page showed their
	// ticket type sold out, so they never checked out), Completed
	// (tickets issued), SoldOut (rejected at checkout: no seats left),
	// Rejected (rejected for another reason), Cancelled (the payment
	// never came; Abandoned of them meant to abandon), and Unanswered (a
	// command failed, or no answer came in time). Errors holds the first
	// few reasons for Unanswered.
	TurnedAway, Completed, SoldOut, Rejected, Cancelled, Abandoned, Unanswered int
	Errors                                                                     []string
	// Elapsed is the time from the first buyer's start to the last
	// answer.
	Elapsed time.Duration
	// BuyerCommands counts the buyers' commands (4 each); Deliveries the
	// messages the relay delivered to the modules (each handled by a
	// command or a process); Throughput is both per second of Elapsed.
	BuyerCommands, Deliveries int64
	Throughput                float64
	// Look is the latency of a buyer's look at the seats left, Command of
	// a buyer's command, Delivery of a message's handling, Answer the
	// time from a buyer's checkout to its order's answer.
	Look, Command, Delivery, Answer Latency
	// Costliest are the message types whose handling took the most time
	// in all.
	Costliest []TypeTime
	// Conflicts counts appends refused for a concurrency conflict (each
	// retried by its handler), as the store's observer saw them.
	Conflicts int64
	// Audit is the sale as the event store tells it.
	Audit Audit
}

// Latency is a distribution's percentiles.
type Latency struct {
	N             int
	P50, P95, P99 time.Duration
}

func percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	at := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	return Latency{N: len(d), P50: at(0.50), P95: at(0.95), P99: at(0.99)}
}

// Audit is a concert's sale read from the event store: the inventory's
// and the reservations' streams.
type Audit struct {
	// Capacity per ticket type, from the inventory's stream.
	Capacity map[string]int
	// Taken is the inventory's count of seats held or confirmed.
	Taken map[string]int
	// Held and Confirmed are the seats of the reservations held and
	// confirmed, folded from each reservation's stream.
	Held, Confirmed map[string]int
	// Reservations is how many reservations were made.
	Reservations int
	// Oversold is the seats held or confirmed beyond the capacity, summed
	// over the ticket types: 0 unless the inventory oversold.
	Oversold int
	// Mismatch is the seats by which the inventory's count differs from
	// the reservations' (summed over ticket types, in absolute value): 0
	// unless a release freed seats twice or a reservation took none.
	Mismatch int
}

// ConcertID is the ID of the concert on sale.
const ConcertID = "stadium"

// Run plays a sale and checks it. It returns an error if the sale could
// not be set up or checked; a sale that ran but oversold, or left buyers
// without an answer, is told by the Result (see Result.OK). When ctx ends,
// no buyer starts any more, as with Duration: the buyers already started
// are answered and the sale is checked.
func Run(ctx context.Context, cfg Config) (Result, error) {
	stopping := ctx
	ctx = context.WithoutCancel(ctx)
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	res := Result{Config: cfg}
	var conflicts atomic.Int64
	events, readModels, closeStores, err := openStores(ctx, cfg, conflictCounter{&conflicts})
	if err != nil {
		return res, err
	}
	defer closeStores()

	gateway := finance.NewFakeGateway()
	deliveries := &deliveryLog{}
	a, err := app.New(app.Config{Events: events, ReadModels: app.SQLiteReadModels(readModels), Hold: cfg.Hold, PaymentGrace: cfg.Hold / 4,
		RelayPollInterval: 20 * time.Millisecond, RelayWorkers: cfg.RelayWorkers, Payments: gateway,
		Mailer:       tickets.MailerFunc(func(context.Context, tickets.Mail) (string, error) { return "discarded", nil }),
		PasswordCost: 4, RelayObserver: deliveries, Logger: cfg.Logger})
	if err != nil {
		return res, err
	}
	answers := newAnswers()
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	var running sync.WaitGroup
	var runErr error
	appRun := a.RunProcesses
	if cfg.ReadModels {
		appRun = a.Run
	}
	running.Go(func() {
		if err := runAll(runCtx, appRun, answers.subscription(events, a.Registry()).Run); err != nil {
			runErr = err
			cfg.Logger.Error("loadtest: the app stopped", "err", err)
		}
	})
	defer func() { stop(); running.Wait() }()

	if err := a.CreateConcert(ctx, es.NewID(), concerts.CreateConcert{ConcertID: ConcertID, Name: "Stadium Night", Artist: "Dawid Podsiadło",
		StartsAt: time.Now().UTC().AddDate(0, 3, 0).Truncate(time.Hour), Venue: "PGE Narodowy, Warsaw", OrganizerID: "organizer",
		TicketTypes: []concerts.TicketType{{Name: "GA", Price: money.Money{Amount: 24900, Currency: "PLN"}}, {Name: "VIP", Price: money.Money{Amount: 59900, Currency: "PLN"}}},
		Capacity:    map[string]int{"VIP": cfg.Seats / 10, "GA": cfg.Seats - cfg.Seats/10}}); err != nil {
		return res, fmt.Errorf("loadtest: create the concert: %w", err)
	}

	s := &sale{cfg: cfg, app: a, gateway: gateway, answers: answers, deliveries: deliveries}
	start := time.Now()
	progressDone := make(chan struct{})
	if cfg.Progress != nil {
		go s.progress(start, &conflicts, progressDone)
	} else {
		close(progressDone)
	}
	s.play(stopping, ctx, start)
	res.Elapsed = time.Since(start)
	if cfg.Progress != nil {
		progressDone <- struct{}{}
	}
	stop()
	running.Wait()
	if runErr != nil {
		return res, runErr
	}

	s.mu.Lock()
	res.Started, res.Stopped = s.started, s.stopped
	res.TurnedAway, res.Completed, res.SoldOut, res.Rejected = s.turnedAway, s.completed, s.soldOut, s.rejected
	res.Cancelled, res.Abandoned, res.Unanswered = s.cancelled, s.abandoned, s.unanswered
	res.Errors = s.errors
	res.BuyerCommands = int64(len(s.commands))
	res.Look, res.Command, res.Answer = percentiles(s.looks), percentiles(s.commands), percentiles(s.answerTimes)
	s.mu.Unlock()
	res.Deliveries, res.Delivery = deliveries.summary()
	res.Costliest = deliveries.costliest(4)
	res.Throughput = float64(res.BuyerCommands+res.Deliveries) / res.Elapsed.Seconds()
	res.Conflicts = conflicts.Load()
	if res.Audit, err = AuditSale(ctx, events, a.Registry(), ConcertID); err != nil {
		return res, err
	}
	return res, nil
}

// OK reports whether the sale sold no seat twice, the inventory agrees
// with its reservations, and every buyer who started got an answer.
func (r Result) OK() bool {
	return r.Audit.Oversold == 0 && r.Audit.Mismatch == 0 && r.Unanswered == 0 &&
		r.TurnedAway+r.Completed+r.SoldOut+r.Rejected+r.Cancelled == r.Started
}

// openStores opens the event store and the read models' store.
func openStores(ctx context.Context, cfg Config, obs es.StoreObserver) (events es.Store, readModels *sqlite.Store, closeAll func(), err error) {
	var closers []func()
	closeAll = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	path := cfg.DB
	if path == "" {
		dir, err := os.MkdirTemp("", "ticketing-loadtest-")
		if err != nil {
			return nil, nil, closeAll, err
		}
		closers = append(closers, func() { os.RemoveAll(dir) })
		path = filepath.Join(dir, "ticketing.db")
	}
	// synchronous=NORMAL: an acknowledged append survives a crash of the
	// process, not of the machine; the production store is PostgreSQL.
	sq, err := sqlite.Open(ctx, path, sqlite.Config{Synchronous: sqlite.SyncNormal, Observer: obs})
	if err != nil {
		return nil, nil, closeAll, err
	}
	closers = append(closers, func() { sq.Close() })
	if cfg.Store == "sqlite" {
		return sq, sq, closeAll, nil
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, nil, closeAll, fmt.Errorf("loadtest: postgres: %w", err)
	}
	if !strings.Contains(cfg.DSN, "pool_max_conns") {
		// pgxpool's default (4 on this machine's 2 cores) would make the
		// buyers and the relay's workers queue for connections.
		pc.MaxConns = int32(cfg.Concurrency + cfg.RelayWorkers + 8)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, nil, closeAll, fmt.Errorf("loadtest: postgres: %w", err)
	}
	closers = append(closers, pool.Close)
	schema := fmt.Sprintf("loadtest_%d", time.Now().UnixNano())
	pg, err := postgres.New(ctx, pool, postgres.Config{Schema: schema, Observer: obs})
	if err != nil {
		return nil, nil, closeAll, err
	}
	if err := pg.Migrate(ctx); err != nil {
		return nil, nil, closeAll, fmt.Errorf("loadtest: postgres: %w", err)
	}
	closers = append(closers, func() {
		pg.Close()
		if _, err := pool.Exec(context.WithoutCancel(ctx), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			cfg.Logger.Warn("loadtest: drop the sale's schema", "schema", schema, "err", err)
		}
	})
	return pg, sq, closeAll, nil
}

// runAll runs each run until ctx ends or one fails.
func runAll(ctx context.Context, runs ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, run := range runs {
		wg.Go(func() {
			if errs[i] = run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// sale is a sale in progress.
type sale struct {
	cfg        Config
	app        *app.App
	gateway    *finance.FakeGateway
	answers    *answers
	deliveries *deliveryLog

	mu                                                                         sync.Mutex
	started                                                                    int
	stopped                                                                    bool
	turnedAway, completed, soldOut, rejected, cancelled, abandoned, unanswered int
	errors                                                                     []string
	looks, commands, answerTimes                                               []time.Duration
}

// play runs the buyers, Concurrency at a time, until every buyer is
// answered, or Duration or the end of stopping stops new ones; the
// buyers run in ctx.
func (s *sale) play(stopping, ctx context.Context, start time.Time) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range s.cfg.Concurrency {
		wg.Go(func() {
			for i := range next {
				s.buyer(ctx, i)
			}
		})
	}
feed:
	for i := range s.cfg.Buyers {
		if s.cfg.Duration > 0 && time.Since(start) > s.cfg.Duration {
			s.mu.Lock()
			s.stopped = true
			s.mu.Unlock()
			break
		}
		select {
		case next <- i:
			s.mu.Lock()
			s.started++
			s.mu.Unlock()
		case <-stopping.Done():
			s.mu.Lock()
			s.stopped = true
			s.mu.Unlock()
			break feed
		}
	}
	close(next)
	wg.Wait()
}

// buyer plays buyer i: an account, a cart, a delivery, a checkout, and the
// wait for the order's answer.
func (s *sale) buyer(ctx context.Context, i int) {
	rng := rand.New(rand.NewPCG(s.cfg.Seed, uint64(i)+1))
	user := fmt.Sprintf("buyer-%d", i)
	ticketType, quantity := "GA", 1+rng.IntN(4)
	if rng.IntN(10) == 0 {
		ticketType = "VIP"
	}
	abandons := s.cfg.Abandon > 0 && rng.Float64() < s.cfg.Abandon
	if abandons {
		s.gateway.PendUser(user) // the bank never answers: the hold runs out
	}
	fail := func(step string, err error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.unanswered++
		if len(s.errors) < 10 {
			s.errors = append(s.errors, fmt.Sprintf("buyer %d: %s: %v", i, step, err))
		}
	}
	// The concert's page: a buyer who sees its ticket type sold out
	// leaves.
	began := time.Now()
	inv, err := s.app.Inventory(ctx, ConcertID)
	took := time.Since(began)
	s.mu.Lock()
	s.looks = append(s.looks, took)
	s.mu.Unlock()
	if err != nil {
		fail("look at the seats left", err)
		return
	}
	if inv.Left(ticketType) <= 0 {
		s.mu.Lock()
		s.turnedAway++
		s.mu.Unlock()
		return
	}
	email := user + "@example.com"
	var placed map[string]string
	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"register", func() error {
			return s.app.RegisterUser(ctx, user, email, "Buyer", "correct horse battery", users.Customer)
		}},
		{"add to cart", func() error { return s.app.AddToCart(ctx, es.NewID(), user, ConcertID, ticketType, quantity) }},
		{"choose delivery", func() error {
			return s.app.ChooseDelivery(ctx, es.NewID(), user, carts.Delivery{Method: carts.ByEmail, Email: email})
		}},
		{"checkout", func() (err error) { placed, err = s.app.Checkout(ctx, es.NewID(), user); return err }},
	} {
		began := time.Now()
		err := step.do()
		took := time.Since(began)
		s.mu.Lock()
		s.commands = append(s.commands, took)
		s.mu.Unlock()
		if err != nil {
			fail(step.name, err)
			return
		}
	}
	checkedOut := time.Now()
	// The answer comes by the hold's end plus the order's grace at the
	// latest, once the order is placed; two minutes more cover a backlog
	// on a busy machine.
	wait := s.cfg.Hold + s.cfg.Hold/4 + 2*time.Minute
	a, err := s.answers.wait(ctx, placed[ConcertID], wait)
	if err != nil {
		fail("answer", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answerTimes = append(s.answerTimes, time.Since(checkedOut))
	switch {
	case a.status == orders.Completed:
		s.completed++
	case a.status == orders.Rejected && strings.HasSuffix(a.reason, "sold out"):
		s.soldOut++
	case a.status == orders.Rejected:
		s.rejected++
	default:
		s.cancelled++
		if abandons {
			s.abandoned++
		}
	}
}

// progress prints a line every second until done is sent to.
func (s *sale) progress(start time.Time, conflicts *atomic.Int64, done chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastCmds int64
	last := start
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			s.mu.Lock()
			answered := s.turnedAway + s.completed + s.soldOut + s.rejected + s.cancelled
			line := fmt.Sprintf("%5.0fs  buyers %d/%d answered (%d started): %d completed, %d sold out at checkout, %d turned away, %d cancelled",
				now.Sub(start).Seconds(), answered, s.cfg.Buyers, s.started, s.completed, s.soldOut, s.turnedAway, s.cancelled)
			cmds := int64(len(s.commands))
			s.mu.Unlock()
			n, _ := s.deliveries.count()
			cmds += n
			fmt.Fprintf(s.cfg.Progress, "%s; %.0f commands/s, %d conflicts\n", line, float64(cmds-lastCmds)/now.Sub(last).Seconds(), conflicts.Load())
			lastCmds, last = cmds, now
		}
	}
}

// answer is an order's final status.
type answer struct {
	status orders.Status
	reason string
}

// answers tells buyers the answers to their orders, from the orders'
// streams: a subscription to the category "order" (the same events the
// order process writes), not a read model.
type answers struct {
	mu      sync.Mutex
	known   map[string]answer
	waiting map[string]chan struct{}
}

func newAnswers() *answers {
	return &answers{known: map[string]answer{}, waiting: map[string]chan struct{}{}}
}

func (a *answers) subscription(store es.Store, reg *es.Registry) *es.Subscription {
	handle := func(_ context.Context, e es.Event) error {
		v, ok, err := reg.DecodeKnown(e)
		if !ok || err != nil {
			return err
		}
		switch ev := v.(type) {
		case orders.OrderCompleted:
			a.tell(ev.OrderID, answer{status: orders.Completed})
		case orders.OrderRejected:
			a.tell(ev.OrderID, answer{status: orders.Rejected, reason: ev.Reason})
		case orders.OrderCancelled:
			a.tell(ev.OrderID, answer{status: orders.Cancelled, reason: ev.Reason})
		}
		return nil
	}
	return es.NewSubscription("loadtest-answers", store, es.AtLeastOnce("loadtest-answers", memory.New(memory.Config{}), handle),
		es.SubscriptionConfig{Categories: []string{"order"}, Types: []string{"orders.OrderCompleted", "orders.OrderRejected", "orders.OrderCancelled"}})
}

func (a *answers) tell(orderID string, ans answer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.known[orderID]; ok {
		return // the first answer stands (a completed order stays so here)
	}
	a.known[orderID] = ans
	if ch, ok := a.waiting[orderID]; ok {
		close(ch)
		delete(a.waiting, orderID)
	}
}

func (a *answers) wait(ctx context.Context, orderID string, timeout time.Duration) (answer, error) {
	if orderID == "" {
		return answer{}, errors.New("checkout placed no order for the concert")
	}
	a.mu.Lock()
	if ans, ok := a.known[orderID]; ok {
		a.mu.Unlock()
		return ans, nil
	}
	ch := make(chan struct{})
	a.waiting[orderID] = ch
	a.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		return answer{}, fmt.Errorf("no answer to order %s in %v", orderID, timeout)
	case <-ctx.Done():
		return answer{}, ctx.Err()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.known[orderID], nil
}

// deliveryLog is the relay's observer: it keeps the handling time of
// every message delivered.
type deliveryLog struct {
	mu     sync.Mutex
	took   []time.Duration
	byType map[string]*TypeTime
	fails  int64
}

// TypeTime is the time spent handling the messages of one type.
type TypeTime struct {
	Type       string
	N          int
	Total, Max time.Duration
}

func (d *deliveryLog) ObserveDelivery(m es.Message, took time.Duration, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.fails++
		return
	}
	d.took = append(d.took, took)
	if d.byType == nil {
		d.byType = map[string]*TypeTime{}
	}
	tt := d.byType[m.Type]
	if tt == nil {
		tt = &TypeTime{Type: m.Type}
		d.byType[m.Type] = tt
	}
	tt.N++
	tt.Total += took
	tt.Max = max(tt.Max, took)
}

// costliest returns the message types that took the most handling time,
// most first.
func (d *deliveryLog) costliest(n int) []TypeTime {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []TypeTime
	for _, tt := range d.byType {
		out = append(out, *tt)
	}
	slices.SortFunc(out, func(a, b TypeTime) int { return cmp.Compare(b.Total, a.Total) })
	return out[:min(n, len(out))]
}

func (*deliveryLog) ObserveBacklog(int64) {}

func (d *deliveryLog) count() (delivered, failed int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.took)), d.fails
}

func (d *deliveryLog) summary() (int64, Latency) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(len(d.took)), percentiles(slices.Clone(d.took))
}

// conflictCounter is the stores' observer: it counts the appends refused
// for a concurrency conflict.
type conflictCounter struct{ n *atomic.Int64 }

func (c conflictCounter) ObserveAppend(_ int, _ time.Duration, err error) {
	if errors.Is(err, es.ErrConcurrency) {
		c.n.Add(1)
	}
}

// AuditSale reads a concert's sale from the event store: the inventory's
// stream, and every reservation's stream folded into its state.
func AuditSale(ctx context.Context, store es.Store, reg *es.Registry, concertID string) (Audit, error) {
	a := Audit{Capacity: map[string]int{}, Taken: map[string]int{}, Held: map[string]int{}, Confirmed: map[string]int{}}
	inv, err := es.Collect(store.ReadStream(ctx, reservations.Stream(concertID), es.StreamQuery{}))
	if err != nil {
		return a, fmt.Errorf("loadtest: audit: %w", err)
	}
	var state reservations.Inventory
	for _, e := range inv {
		v, err := es.Decode[reservations.Event](reg, e)
		if err != nil {
			return a, fmt.Errorf("loadtest: audit: %w", err)
		}
		state = reservations.Decider().Evolve(state, v)
	}
	maps.Copy(a.Capacity, state.Capacity)
	maps.Copy(a.Taken, state.Reserved)
	booked := map[string]reservations.Reservation{}
	for e, err := range store.ReadAll(ctx, es.AllQuery{Categories: []string{reservations.ReservationCategory}}) {
		if err != nil {
			return a, fmt.Errorf("loadtest: audit: %w", err)
		}
		v, err := es.Decode[reservations.ReservationEvent](reg, e)
		if err != nil {
			return a, fmt.Errorf("loadtest: audit: %w", err)
		}
		booked[e.StreamID] = reservations.ReservationDecider().Evolve(booked[e.StreamID], v)
	}
	for _, r := range booked {
		if r.ConcertID != concertID {
			continue
		}
		a.Reservations++
		for t, n := range r.Seats {
			switch r.Status {
			case reservations.Held:
				a.Held[t] += n
			case reservations.Confirmed:
				a.Confirmed[t] += n
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(a.Capacity)) {
		taken := a.Held[t] + a.Confirmed[t]
		a.Oversold += max(0, taken-a.Capacity[t])
		a.Mismatch += max(taken-a.Taken[t], a.Taken[t]-taken)
	}
	return a, nil
}

// Print writes the result for a person.
func (r Result) Print(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "sale: %d seats, %d buyers, concurrency %d, hold %v, abandon %.0f%%, store %s, %d relay workers, read models %v\n",
		c.Seats, c.Buyers, c.Concurrency, c.Hold, 100*c.Abandon, c.Store, c.RelayWorkers, c.ReadModels)
	if r.Stopped {
		fmt.Fprintf(w, "stopped early (-duration %v, or interrupted): %d buyers started\n", c.Duration, r.Started)
	}
	fmt.Fprintf(w, "took %.1fs\n", r.Elapsed.Seconds())
	fmt.Fprintf(w, "answers: %d turned away by the concert's page (sold out), %d completed, %d sold out at checkout, %d rejected otherwise, %d cancelled (%d abandoned), %d unanswered, of %d buyers started\n",
		r.TurnedAway, r.Completed, r.SoldOut, r.Rejected, r.Cancelled, r.Abandoned, r.Unanswered, r.Started)
	for _, e := range r.Errors {
		fmt.Fprintln(w, "  ", e)
	}
	fmt.Fprintf(w, "throughput: %.0f commands/s (%d buyer commands, %d messages delivered)\n", r.Throughput, r.BuyerCommands, r.Deliveries)
	lat := func(name string, l Latency) {
		fmt.Fprintf(w, "%-20s p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  (%d)\n", name,
			float64(l.P50.Microseconds())/1000, float64(l.P95.Microseconds())/1000, float64(l.P99.Microseconds())/1000, l.N)
	}
	lat("seats-left look:", r.Look)
	lat("buyer command:", r.Command)
	lat("message handled:", r.Delivery)
	lat("checkout → answer:", r.Answer)
	for _, tt := range r.Costliest {
		fmt.Fprintf(w, "  %-28s %7d handled, %6.1fs in all, mean %6.2f ms, max %7.1f ms\n", tt.Type, tt.N, tt.Total.Seconds(),
			float64(tt.Total.Microseconds())/1000/float64(tt.N), float64(tt.Max.Microseconds())/1000)
	}
	fmt.Fprintf(w, "conflicts retried: %d\n", r.Conflicts)
	a := r.Audit
	fmt.Fprintf(w, "event store: %d reservations; capacity %v, confirmed %v, held %v; the inventory counts %v taken\n",
		a.Reservations, a.Capacity, a.Confirmed, a.Held, a.Taken)
	fmt.Fprintf(w, "oversold: %d seats; inventory vs reservations mismatch: %d seats\n", a.Oversold, a.Mismatch)
}
