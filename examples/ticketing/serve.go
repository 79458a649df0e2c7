package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
	"esgo.dev/es/esprom"
	"esgo.dev/es/postgres"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/tickets/mailer"
	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

// serveOptions are serve's flags.
type serveOptions struct {
	addr     string
	db       string // SQLite file
	postgres string // DSN: events and read models on PostgreSQL instead
	schema   string // PostgreSQL schema
	mail     string // folder of the e-mailed tickets
	demo     bool   // demo data on first start
	hold     time.Duration
	logLevel slog.Level
	// passwordCost is the bcrypt cost (tests lower it; see
	// app.Config.PasswordCost).
	passwordCost int
	modules      string // comma-separated modules to run (app.ParseModules)
	nats         string // NATS URL: the modules' messages go through JetStream
}

func serveCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	var o serveOptions
	fs.StringVar(&o.addr, "addr", "localhost:8080", `address to listen on; "" serves no HTTP (a process that only runs -modules)`)
	fs.StringVar(&o.db, "db", "ticketing.db", "SQLite file of events and read models (created if missing)")
	fs.StringVar(&o.postgres, "postgres", "", `PostgreSQL DSN: keep events and read models there instead (e.g. -postgres "$ES_POSTGRES_DSN")`)
	fs.StringVar(&o.schema, "schema", "ticketing", "PostgreSQL schema, with -postgres")
	fs.StringVar(&o.mail, "mail", "", "folder the e-mailed tickets are written to (default ticketing-mail beside -db, or in the working directory)")
	fs.BoolVar(&o.demo, "demo", true, "add demo users and concerts on first start")
	fs.DurationVar(&o.hold, "hold", 15*time.Minute, "how long a reservation holds its seats")
	fs.TextVar(&o.logLevel, "log", slog.LevelInfo, "log level: DEBUG, INFO, WARN, ERROR")
	fs.StringVar(&o.modules, "modules", strings.Join(app.AllModules(), ","),
		"the modules whose message handlers this process runs, comma-separated; fewer than all needs -nats (and -postgres, shared by the processes)")
	fs.StringVar(&o.nats, "nats", "", "NATS server URL: carry the modules' messages through JetStream instead of the in-process bus (e.g. nats://127.0.0.1:4222)")
	_ = fs.Parse(args)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, o, os.Stdout, nil)
}

// serve runs the web application until ctx ends, then shuts down: the
// listener closes, requests in flight finish (for up to 10 s), then the
// subscriptions and the relay stop, recording what they finished, and the
// stores close. What was not delivered yet stays in the outbox for the
// next start. ready, if not nil, is called with the URL once it listens.
func serve(ctx context.Context, o serveOptions, out io.Writer, ready func(url string)) error {
	modules := app.AllModules()
	if o.modules != "" {
		var err error
		if modules, err = app.ParseModules(o.modules); err != nil {
			return err
		}
	}
	if len(modules) < len(app.AllModules()) && (o.nats == "" || o.postgres == "") {
		return errors.New("serve: running only some modules needs -nats (the other modules' processes are reached through JetStream) and -postgres (the event store they share)")
	}
	logger := slog.New(web.LogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: o.logLevel})))
	metrics := web.NewMetricsRegistry()
	storeMetrics, err := esprom.NewStoreMetrics(metrics)
	if err != nil {
		return err
	}
	subMetrics, err := esprom.NewSubscriptionMetrics(metrics)
	if err != nil {
		return err
	}
	relayMetrics, err := esprom.NewRelayMetrics(metrics)
	if err != nil {
		return err
	}

	var (
		events      es.Store
		readModels  app.ReadModelStore
		relayLocker es.Locker
	)
	if o.postgres != "" {
		pool, err := pgxpool.New(ctx, o.postgres)
		if err != nil {
			return err
		}
		defer pool.Close()
		store, err := postgres.New(ctx, pool, postgres.Config{Schema: o.schema, Observer: storeMetrics, Logger: logger})
		if err != nil {
			return err
		}
		if err := store.Migrate(ctx); err != nil {
			return err
		}
		rm, err := app.OpenPostgresReadModels(store)
		if err != nil {
			return err
		}
		defer rm.Close()
		events, readModels = store, rm
		// Every process sharing the store runs a relay: one delivers,
		// the others stand by.
		relayLocker = store.Locker()
		fmt.Fprintf(out, "store: PostgreSQL, schema %q\n", o.schema)
	} else {
		store, err := sqlite.Open(ctx, o.db, sqlite.Config{Observer: storeMetrics})
		if err != nil {
			return err
		}
		defer store.Close()
		events, readModels = store, app.SQLiteReadModels(store)
		fmt.Fprintln(out, "store:", o.db)
	}
	if o.mail == "" {
		o.mail = "ticketing-mail"
		if o.postgres == "" {
			o.mail = filepath.Join(filepath.Dir(o.db), "ticketing-mail")
		}
	}
	folder, err := mailer.NewFolder(o.mail, "tickets@ticketing.example")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "ticket e-mails:", o.mail)
	var js *app.JetStreamConfig
	if o.nats != "" {
		nc, err := nats.Connect(o.nats, nats.Name("ticketing "+strings.Join(modules, ",")), nats.MaxReconnects(-1),
			nats.RetryOnFailedConnect(true), nats.ReconnectWait(250*time.Millisecond))
		if err != nil {
			return err
		}
		defer nc.Close()
		client, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		js = &app.JetStreamConfig{JetStream: client}
		fmt.Fprintln(out, "messages: NATS JetStream at", o.nats)
	}
	a, err := app.New(app.Config{Events: events, ReadModels: readModels, Hold: o.hold, Payments: finance.NewFakeGateway(),
		Mailer: folder, RelayObserver: relayMetrics, SubscriptionObserver: subMetrics, Logger: logger, PasswordCost: o.passwordCost,
		Modules: modules, JetStream: js, RelayLocker: relayLocker})
	if err != nil {
		return err
	}
	if o.nats != "" || len(modules) < len(app.AllModules()) {
		fmt.Fprintln(out, "modules:", strings.Join(a.Modules(), ","))
	}
	if o.addr == "" {
		return work(ctx, a, out, ready)
	}
	srv, err := web.New(ctx, web.Config{App: a, DB: readModels, Events: events, Logger: logger, Metrics: metrics})
	if err != nil {
		return err
	}

	// The background work runs on its own context: it stops after the
	// HTTP server has drained, so that requests in flight still see it.
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(runCtx) }()

	if o.demo {
		if err := addDemoData(ctx, a, out); err != nil {
			stopRun()
			return errors.Join(err, <-runDone)
		}
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		stopRun()
		return errors.Join(err, <-runDone)
	}
	url := "http://" + ln.Addr().String()
	// Every phase of a connection is bounded, so slow or idle clients
	// cannot hold connections open without end; no response streams.
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	serveDone := make(chan error, 1)
	go func() { serveDone <- hs.Serve(ln) }()
	fmt.Fprintf(out, "ticketing is at %s (Ctrl-C stops it)\n", url)
	if ready != nil {
		ready(url)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	case err := <-runDone:
		runDone <- err // for the wait below
	}
	fmt.Fprintln(out, "shutting down: finishing requests, then stopping the subscriptions and the relay")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		serveErr = errors.Join(serveErr, err)
	}
	stopRun()
	runErr := <-runDone
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, runErr)
}

// work runs a process without HTTP: the handlers of its modules (and the
// relay, standing by for the others' with -postgres) but no read models,
// which the web processes keep. It stops when ctx ends. ready, if not nil,
// is called with "" once it runs.
func work(ctx context.Context, a *app.App, out io.Writer, ready func(url string)) error {
	fmt.Fprintln(out, "no HTTP: running the modules' handlers (Ctrl-C stops them)")
	done := make(chan error, 1)
	go func() { done <- a.RunProcesses(ctx) }()
	if ready != nil {
		ready("")
	}
	err := <-done
	fmt.Fprintln(out, "stopped")
	return err
}

// demoPassword is the password of the demo accounts, printed at start:
// the demo data is for trying the application on one's own machine.
const demoPassword = "ticketing-demo"

// addDemoData registers an admin, an organizer and a customer and
// announces two concerts, unless the admin exists already: the IDs are
// fixed, so a second start (or a crash half-way through the first) adds
// nothing twice.
func addDemoData(ctx context.Context, a *app.App, out io.Writer) error {
	id := func(name string) string { return es.DeriveID("ticketing-demo/"+name, 0) }
	accounts := []struct {
		name, email string
		role        users.Role
	}{
		{"Ada Admin", "admin@ticketing.example", users.Admin},
		{"Olga Organizer", "olga@ticketing.example", users.Organizer},
		{"Ala Customer", "ala@ticketing.example", users.Customer},
	}
	defer func() {
		fmt.Fprintf(out, "demo accounts (password %q):", demoPassword)
		for _, acc := range accounts {
			fmt.Fprintf(out, " %s (%s)", acc.email, acc.role)
		}
		fmt.Fprintln(out)
	}()
	admin, _, err := a.Users.Load(ctx, users.Stream(id(accounts[0].email)))
	if err != nil || admin.ID != "" {
		return err
	}
	for _, acc := range accounts[1:] {
		if err := a.RegisterUser(ctx, id(acc.email), acc.email, acc.name, demoPassword, acc.role); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}
	pln := func(amount int64) money.Money { return money.Money{Amount: amount, Currency: "PLN"} }
	starts := time.Now().UTC().AddDate(0, 3, 0).Truncate(24 * time.Hour).Add(20 * time.Hour)
	for i, c := range []concerts.CreateConcert{
		{ConcertID: "summer-night", Name: "Summer Night", Artist: "Kwiat Jabłoni", Venue: "Torwar, Warsaw", StartsAt: starts,
			TicketTypes: []concerts.TicketType{{Name: "VIP", Price: pln(39900)}, {Name: "Standing", Price: pln(14950)}},
			Capacity:    map[string]int{"VIP": 20, "Standing": 200}},
		{ConcertID: "stadium-tour", Name: "Stadium Tour", Artist: "Dawid Podsiadło", Venue: "PGE Narodowy, Warsaw", StartsAt: starts.AddDate(0, 0, 14),
			TicketTypes: []concerts.TicketType{{Name: "GA", Price: pln(25000)}},
			Capacity:    map[string]int{"GA": 50000}},
	} {
		c.OrganizerID = id(accounts[1].email)
		if err := a.CreateConcert(ctx, id(fmt.Sprintf("concert-%d", i)), c); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}
	// The admin last: its existence says the rest is there.
	if err := a.RegisterUser(ctx, id(accounts[0].email), accounts[0].email, accounts[0].name, demoPassword, accounts[0].role); err != nil {
		return fmt.Errorf("demo data: %w", err)
	}
	fmt.Fprintln(out, "demo data added: two concerts by Olga")
	return nil
}
