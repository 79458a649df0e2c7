// Package app wires the ticketing example together: the registry, the
// command handlers of the concerts, carts, reservations and users modules,
// the process managers (reservation expiry, the order process and the
// concerts' sales) with the relay that delivers their messages and
// deadlines through a bus, the adapter that answers the order process's
// seat requests with the reservations inventory, and the subscriptions
// that keep the SQL read models.
//
// Events live in any es.Store (SQLite by default; memory and PostgreSQL
// work too). Read models live in SQLite (usually the same file) or in
// PostgreSQL (see ReadModelStore).
// The processes need a store that is an es.Outbox, because their messages
// and deadlines are persisted in the outbox with their state; on a store
// without one, reservations do not expire and checkout fails (New logs it).
//
// The finance and tickets modules answer the order process through the
// same bus: a purchase runs end to end, from checkout to a captured
// payment (a fake gateway by default) and tickets mailed to a folder or
// handed to a (fake) courier.
//
// # Modules as services
//
// By default one process runs every module and the relay hands the
// messages to an in-process es.Bus. The modules can also run in separate
// processes that share the event store (PostgreSQL) and exchange their
// messages only through NATS JetStream (Config.Modules and
// Config.JetStream; serve's -modules and -nats). Which module handles
// which message types is not listed anywhere by hand: it is what each
// module subscribes as it is wired (HandledTypes), and each module run in
// a process gets a durable consumer (natsjs.Subscriber, named
// "ticketing-<module>") of exactly those types. Every process runs a
// relay that publishes the whole outbox to JetStream; with
// Config.RelayLocker (the store's Locker) one of them delivers and the
// others stand by.
//
// What a process does not run is only the reaction to messages: every
// module's commands work in any process, since they write to the shared
// store (the web process checks out carts and cancels orders whatever
// modules it runs). The read models are kept by the processes that serve
// reads: the web process runs all of them (Run), since it shows them all
// and they only read the store; a process without HTTP runs its modules'
// handlers only (RunProcesses). With several web processes, each read
// model's subscription is active in one of them at a time.
package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/natsjs"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/explorer"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/users"
)

// Config configures an [App].
type Config struct {
	// Events is the event store. If it implements es.Outbox, reservations
	// expire; if es.CheckpointStore, the expiry feed remembers its place
	// (otherwise it is replayed from the start, harmlessly).
	Events es.Store
	// ReadModels holds the read models' tables: SQLiteReadModels of the
	// event store itself, or of another file, or OpenPostgresReadModels.
	ReadModels ReadModelStore
	// Clock stamps commands and decides when deadlines are due
	// (default es.SystemClock).
	Clock es.Clock
	// Hold is how long a reservation holds its seats unconfirmed
	// (default 15 minutes).
	Hold time.Duration
	// MaxAttempts bounds the retries of a command on a contended stream
	// (default 1000: a flash sale has every buyer on one inventory stream,
	// and a buyer may lose a race to each of the seats sold).
	MaxAttempts int
	// PaymentGrace is how long past a hold's end an order still waits for
	// its payment (see orders.Config; default 0).
	PaymentGrace time.Duration
	// RelayPollInterval bounds how late a deadline fires (default 100ms).
	RelayPollInterval time.Duration
	// Mailer sends tickets by e-mail (default: .eml files in the folder
	// ticketing-mail of the system's temporary directory; see
	// package tickets/mailer). Courier ships printed tickets (default: the
	// fake courier, called in-process; see package tickets/courier).
	Mailer  tickets.Mailer
	Courier tickets.Courier
	// Payments is the payment gateway (default a finance.FakeGateway
	// that captures every charge).
	Payments finance.Gateway
	// RelayWorkers is how many relay workers deliver messages in parallel,
	// each for its own keys (default 1).
	RelayWorkers int
	// RelayObserver, when set, is told of each delivery attempt and its
	// outcome, after the bus's handlers ran and before the relay records
	// the delivery: the place for metrics (esgo.dev/es/esprom), a trace
	// of the messages, or a test that kills the process in the window
	// where a message is delivered twice.
	RelayObserver es.RelayObserver
	// SubscriptionObserver, when set, is told of the read models'
	// batches, positions and lag (esgo.dev/es/esprom has one).
	SubscriptionObserver es.SubscriptionObserver
	// PasswordCost is the bcrypt cost of new passwords (default bcrypt's,
	// 10; tests use 4).
	PasswordCost int
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// Modules are the modules whose message handlers (and background
	// work: the reservations' expiry feed) this process runs, by the
	// names of AllModules (default all of them). Every module's commands
	// work in any process, for they only write to the shared event store;
	// what a process does not run is the reaction to messages. Running
	// only some modules needs JetStream, so that the messages reach the
	// modules that other processes run.
	Modules []string
	// JetStream, when set, carries the messages between the modules
	// through NATS JetStream instead of the in-process bus: the relay
	// publishes the outbox there, and each module run here has a durable
	// consumer of the message types its handlers handle (HandledTypes).
	JetStream *JetStreamConfig
	// RelayLocker, when set, keeps the relay to one process at a time
	// (es.RelayConfig.Locker): processes sharing a PostgreSQL store pass
	// its Locker, and one of their relays delivers while the others
	// stand by.
	RelayLocker es.Locker
}

// App is the ticketing application: command methods for the modules and
// Run for the background work.
type App struct {
	cfg    Config
	reg    *es.Registry
	outbox es.Outbox
	// routes are the modules' message handlers, which the relay's
	// publisher (the bus, or JetStream and the modules' consumers)
	// delivers to.
	routes    *routes
	jetStream *JetStreamConfig // nil: the in-process bus
	Concerts  *es.CommandHandler[concerts.Concert, concerts.Command, concerts.Event]
	Carts     *es.CommandHandler[carts.Cart, carts.Command, carts.Event]
	Users     *es.CommandHandler[users.User, users.Command, users.Event]
	// multi runs the commands over several streams: a concert and its
	// inventory, a reservation and its concert's inventory, a user and an
	// address. It keeps snapshots of the inventories where the store can.
	multi        *es.MultiStreamHandler
	inventory    *es.CommandHandler[reservations.Inventory, reservations.Command, reservations.Event] // loads only
	reservation  *es.CommandHandler[reservations.Reservation, reservations.Command, reservations.ReservationEvent]
	inventoryQue queue // the commands that change an inventory, one at a time per concert
	expiry       *es.ProcessHandler[reservations.ExpiryState, reservations.ExpiryEvent]
	tickets      *tickets.Service // nil without an outbox
	orders       *es.ProcessHandler[orders.Order, orders.Event]
	sales        *es.ProcessHandler[orders.Sales, orders.SalesEvent]
	salesShards  *es.ProcessHandler[orders.Sales, orders.SalesEvent]
	projs        []sqlprojection.Projection
	subs         []*es.Subscription // one per read model, in the order of projs

	// noSuchUserHash is a bcrypt hash of a random password at
	// PasswordCost, which LogIn compares against when the address is
	// unknown: at the same cost as real hashes, so the time taken does
	// not tell who has an account.
	noSuchUserHash string

	// Finance is the financial module (nil without an outbox): see finance.go.
	Finance *finance.Module
}

// NewRegistry returns a registry with every module's events and messages.
func NewRegistry() (*es.Registry, error) {
	reg := es.NewRegistry()
	err := errors.Join(concerts.Register(reg), carts.Register(reg), reservations.Register(reg), users.Register(reg),
		tickets.RegisterMessages(reg), tickets.Register(reg), finance.Register(reg), orders.Register(reg))
	return reg, err
}

// New builds the application. It does not start anything: see Run.
func New(cfg Config) (*App, error) {
	if cfg.Events == nil || cfg.ReadModels == nil {
		return nil, errors.New("app: Events and ReadModels are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = es.SystemClock{}
	}
	if cfg.Hold <= 0 {
		cfg.Hold = 15 * time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 1000
	}
	if cfg.RelayPollInterval <= 0 {
		cfg.RelayPollInterval = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	modules := AllModules()
	if cfg.Modules != nil {
		var err error
		if modules, err = ParseModules(strings.Join(cfg.Modules, ",")); err != nil {
			return nil, err
		}
	}
	js, err := cfg.JetStream.withDefaults()
	if err != nil {
		return nil, err
	}
	if js == nil && len(modules) < len(AllModules()) {
		return nil, fmt.Errorf("app: running only the modules %s needs JetStream: on the in-process bus, the messages for the others would reach nobody",
			strings.Join(modules, ","))
	}
	reg, err := NewRegistry()
	if err != nil {
		return nil, err
	}
	noSuchUserHash, err := users.HashPasswordCost(rand.Text(), cfg.PasswordCost)
	if err != nil {
		return nil, err
	}
	// One command at a time per stream in this process: a flash sale's
	// buyers queue for the inventory instead of retrying against each
	// other. Other processes are still kept apart by expected versions.
	hc := es.HandlerConfig{MaxAttempts: cfg.MaxAttempts, SerializePerStream: true}
	// A concert's inventory takes an event per reservation made and
	// released: its snapshot (a few counts) spares each command the fold
	// of the whole sale.
	mc := es.HandlerConfig{MaxAttempts: cfg.MaxAttempts}
	if _, ok := cfg.Events.(es.SnapshotStore); ok {
		mc.SnapshotEvery = InventorySnapshotEvery
	}
	a := &App{
		cfg: cfg, reg: reg, routes: newRoutes(modules), jetStream: js, noSuchUserHash: noSuchUserHash,
		Concerts:    es.NewCommandHandler(cfg.Events, reg, concerts.Decider(), hc),
		Carts:       es.NewCommandHandler(cfg.Events, reg, carts.Decider(), hc),
		Users:       es.NewCommandHandler(cfg.Events, reg, users.Decider(), hc),
		multi:       es.NewMultiStreamHandler(cfg.Events, reg, mc),
		inventory:   es.NewCommandHandler(cfg.Events, reg, reservations.Decider(), mc),
		reservation: es.NewCommandHandler(cfg.Events, reg, reservations.ReservationDecider(), hc),
	}
	// The read models are portable: SQLite or PostgreSQL keep them alike.
	a.projs = append([]sqlprojection.Projection{
		concerts.DetailsProjection(reg), concerts.AvailableProjection(reg),
		carts.ContentsProjection(reg), carts.SummaryProjection(reg),
		reservations.UserReservationsProjection(reg), reservations.ConcertReservationsProjection(reg),
		users.ByEmailProjection(reg),
		tickets.UserTicketsProjection(reg), tickets.TicketDetailsProjection(reg), tickets.ConcertTicketSummaryProjection(reg),
		tickets.DeliveryStatusProjection(reg), tickets.ValidationStatusProjection(reg),
		orders.UserOrdersProjection(reg), orders.DetailsProjection(reg),
		explorer.Projection(),
	}, finance.Projections(reg)...)
	for _, p := range a.projs {
		a.subs = append(a.subs, es.NewSubscription(p.Name, cfg.Events, cfg.ReadModels.Consumer(p),
			es.SubscriptionConfig{Locker: cfg.ReadModels.Locker(), Logger: cfg.Logger, Observer: cfg.SubscriptionObserver}))
	}
	if ob, ok := cfg.Events.(es.Outbox); ok {
		a.outbox = ob
		a.expiry = es.NewProcessHandler(ob, reg, reservations.Expiry(), es.ProcessConfig{Clock: cfg.Clock})
		res := a.routes.module("reservations")
		res.Subscribe("reservations.ReservationTimedOut", a.expiry.Handle)
		res.Subscribe("reservations.ExpireReservation", a.expireReservation)
		a.wireOrders(ob)
		if err := a.setupTickets(ob); err != nil {
			return nil, err
		}
		if err := a.wireFinance(ob); err != nil {
			return nil, err
		}
	} else {
		cfg.Logger.Warn("app: the event store has no outbox; reservations will not expire, checkout fails and tickets are not issued")
	}
	return a, nil
}

// InventorySnapshotEvery is how many inventory events a load folds, at
// most, after the inventory's latest snapshot (es.HandlerConfig's
// SnapshotEvery), on stores that keep snapshots.
const InventorySnapshotEvery = 100

// Inventory returns the state of a concert's inventory: its capacity and
// the seats taken, per ticket type.
func (a *App) Inventory(ctx context.Context, concertID string) (reservations.Inventory, error) {
	s, _, err := a.inventory.Load(ctx, reservations.Stream(concertID))
	return s, err
}

// Reservation returns the state of a reservation; its Status is empty if
// there is none.
func (a *App) Reservation(ctx context.Context, reservationID string) (reservations.Reservation, error) {
	s, _, err := a.reservation.Load(ctx, reservations.ReservationStream(reservationID))
	return s, err
}

// Registry returns the application's registry.
func (a *App) Registry() *es.Registry { return a.reg }

// Projections returns the read models' projections.
func (a *App) Projections() []sqlprojection.Projection { return slices.Clone(a.projs) }

// Checkpoints returns where the read models' subscriptions keep their
// checkpoints (one per projection, by its name), so an operator's page can
// show how far each has come.
func (a *App) Checkpoints() CheckpointReader { return a.cfg.ReadModels }

// CheckpointReader reads the read models' checkpoints.
type CheckpointReader interface {
	LoadCheckpoint(ctx context.Context, name string) (int64, error)
}

// Run runs the read models' subscriptions and, with an outbox, the
// processes (RunProcesses), until ctx ends (then it returns nil) or one of
// them fails.
func (a *App) Run(ctx context.Context) error {
	runs, err := a.readModelRuns(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while setting up: not a failure
		}
		return err
	}
	return runAll(ctx, append(runs, a.processRuns()...))
}

// RunReadModels runs only the read models' subscriptions, for a process
// that serves reads while others run the processes.
func (a *App) RunReadModels(ctx context.Context) error {
	runs, err := a.readModelRuns(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while setting up: not a failure
		}
		return err
	}
	return runAll(ctx, runs)
}

// RunProcesses runs only the processes: the relay that delivers the
// outbox's messages and deadlines (to the bus, or to JetStream), the
// JetStream consumers of the modules this process runs, and, if it runs
// the reservations module, the feed of the reservations' events to the
// expiry process. Without an outbox it has nothing to run and returns
// nil at once.
func (a *App) RunProcesses(ctx context.Context) error {
	return runAll(ctx, a.processRuns())
}

func (a *App) readModelRuns(ctx context.Context) ([]func(context.Context) error, error) {
	var runs []func(context.Context) error
	for i, p := range a.projs {
		if err := a.cfg.ReadModels.SetupProjection(ctx, p); err != nil {
			return nil, err
		}
		runs = append(runs, a.subs[i].Run)
	}
	return runs, nil
}

func (a *App) processRuns() []func(context.Context) error {
	if a.outbox == nil {
		return nil
	}
	var runs []func(context.Context) error
	if a.routes.run["reservations"] {
		cps, _ := a.cfg.Events.(es.CheckpointStore)
		if cps == nil {
			cps = &memCheckpoints{}
		}
		// The expiry process is fed the reservations' events as messages
		// (not the inventories', which it does not need): the event ID is
		// the message ID, so a replay after a crash is recognised by the
		// process handler and does nothing.
		feed := es.NewSubscription("reservation-expiry", a.cfg.Events,
			es.AtLeastOnce("reservation-expiry", cps, func(ctx context.Context, e es.Event) error {
				return a.expiry.Handle(ctx, es.Message{ID: e.ID, Key: e.StreamID, Type: e.Type,
					SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata})
			}), es.SubscriptionConfig{Categories: []string{reservations.ReservationCategory}, Logger: a.cfg.Logger})
		runs = append(runs, feed.Run)
	}
	rc := es.RelayConfig{Clock: a.cfg.Clock, PollInterval: a.cfg.RelayPollInterval, Workers: a.cfg.RelayWorkers,
		Locker: a.cfg.RelayLocker, Observer: a.cfg.RelayObserver, Logger: a.cfg.Logger}
	if a.jetStream == nil {
		return append(runs, es.NewRelay(a.outbox, a.routes.bus, rc).Run)
	}
	// Every process runs a relay (with a RelayLocker, one of them
	// delivers and the others stand by): it publishes the whole outbox,
	// whichever module wrote it, and JetStream takes each message to the
	// consumers of the modules that handle its type.
	js := a.jetStream
	relay := func(ctx context.Context) error {
		pub, err := natsjs.NewPublisher(ctx, js.JetStream, natsjs.PublisherConfig{Stream: js.Stream, Subject: js.Subject})
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped while setting up: not a failure
			}
			return err
		}
		return es.NewRelay(a.outbox, pub, rc).Run(ctx)
	}
	return append(append(runs, relay), a.subscriberRuns()...)
}

// runAll runs every run until ctx ends or one fails, which stops the rest.
func runAll(ctx context.Context, runs []func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
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

// WaitForReadModels waits until every read model has handled the events
// stored when it was called. Run must be running.
func (a *App) WaitForReadModels(ctx context.Context) error {
	for _, sub := range a.subs {
		if err := sub.WaitCaughtUp(ctx); err != nil {
			return fmt.Errorf("app: read model %s: %w", sub.Name(), err)
		}
	}
	return nil
}

func (a *App) expireReservation(ctx context.Context, m es.Message) error {
	v, err := es.DecodeMessage(a.reg, m)
	if err != nil {
		return err
	}
	cmd := v.(reservations.ExpireReservation)
	// The message ID is the command ID: a redelivered deadline is applied
	// once.
	_, err = a.decideReservations(ctx, m.ID, cmd.ConcertID, func(ctx context.Context, d *es.Decision) error {
		_, err := reservations.Decide(ctx, d, cmd)
		return err
	})
	return err
}

// decideReservations runs decide, a decision over reservations' and
// inventories' streams, in the multi-stream handler; concertID, unless
// empty, is the concert whose inventory it changes, and the decision
// waits for the turn of that inventory in this process.
func (a *App) decideReservations(ctx context.Context, commandID, concertID string, decide func(ctx context.Context, d *es.Decision) error) (es.MultiStreamResult, error) {
	if concertID != "" {
		unlock, err := a.inventoryQue.lock(ctx, concertID)
		if err != nil {
			return es.MultiStreamResult{}, err
		}
		defer unlock()
	}
	return a.multi.Handle(ctx, commandID, decide)
}

// memCheckpoints is a CheckpointStore for event stores without one.
type memCheckpoints struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *memCheckpoints) LoadCheckpoint(_ context.Context, name string) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[name], nil
}

func (c *memCheckpoints) SaveCheckpoint(_ context.Context, name string, pos int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[name] = pos
	return nil
}
