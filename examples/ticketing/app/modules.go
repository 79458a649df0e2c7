package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
	"esgo.dev/es/natsjs"
)

// ErrUnknownModule: a module name that is none of [AllModules].
var ErrUnknownModule = errors.New("app: unknown module")

// AllModules returns the names of the modules, in the order their
// handlers are wired: the names Config.Modules and serve's -modules take.
func AllModules() []string {
	return []string{"concerts", "carts", "reservations", "orders", "finance", "tickets", "users"}
}

// ParseModules parses a comma-separated list of module names, such as
// serve's -modules flag: "orders,finance". Spaces around names are
// ignored. It fails with an error wrapping [ErrUnknownModule] for a name
// that is not a module, and for an empty list.
func ParseModules(list string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(AllModules(), name) {
			return nil, fmt.Errorf("%w %q: the modules are %s", ErrUnknownModule, name, strings.Join(AllModules(), ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no module named; the modules are %s", ErrUnknownModule, strings.Join(AllModules(), ", "))
	}
	return out, nil
}

// JetStreamConfig carries the modules' messages through NATS JetStream
// (package esgo.dev/es/natsjs) instead of the in-process bus, so that
// modules can run in different processes that share the event store.
type JetStreamConfig struct {
	// JetStream is the client (required). Give its connection
	// nats.MaxReconnects(-1), so that it outlives a restart of the server.
	JetStream jetstream.JetStream
	// Stream and Subject name the JetStream stream and its subjects'
	// prefix (defaults natsjs.DefaultStream and natsjs.DefaultSubject).
	// Every process of one deployment must use the same.
	Stream, Subject string
	// ConsumerPrefix prefixes the name of each module's durable consumer
	// (default "ticketing-": the orders module's is "ticketing-orders").
	ConsumerPrefix string
	// Inbox, when set, is the es.Inbox the modules' consumers handle
	// messages through. By default they record nothing: the handlers
	// deduplicate by message ID themselves, as they must on the bus (the
	// process handlers in their instances' streams, the commands by their
	// command ID, which is the message ID), and they write their effects
	// in transactions of their own. So do not pass a SQL store's Inbox:
	// it holds a transaction, and its connection, through each handling
	// while the handler waits for another one, and a consumer handles up
	// to es.OutboxBuckets messages at a time — enough to starve
	// PostgreSQL's pool, and SQLite has a single writer.
	Inbox es.Inbox
}

func (c *JetStreamConfig) withDefaults() (*JetStreamConfig, error) {
	if c == nil {
		return nil, nil
	}
	if c.JetStream == nil {
		return nil, errors.New("app: JetStreamConfig without a JetStream client")
	}
	d := *c
	d.Stream = cmp.Or(d.Stream, natsjs.DefaultStream)
	d.Subject = cmp.Or(d.Subject, natsjs.DefaultSubject)
	d.ConsumerPrefix = cmp.Or(d.ConsumerPrefix, "ticketing-")
	if d.Inbox == nil {
		d.Inbox = selfDeduplicating{}
	}
	return &d, nil
}

// selfDeduplicating is the modules' consumers' default inbox: it records
// nothing, for the handlers deduplicate themselves (see
// JetStreamConfig.Inbox).
type selfDeduplicating struct{}

func (selfDeduplicating) Handle(ctx context.Context, _, _ string, fn func(ctx context.Context) error) (bool, error) {
	return true, fn(ctx)
}

// routes is the table of the modules' message handlers: which module
// handles which message types, filled as the modules subscribe their
// handlers (nothing else lists them, so nothing can drift from it). Both
// transports deliver from it: the in-process bus is all the handlers of
// the modules this process runs; over JetStream, each such module has a
// consumer for its own types, which hands them to its own bus.
type routes struct {
	run      map[string]bool    // the modules this process runs
	bus      *es.Bus            // the handlers of every module run here
	byModule map[string]*es.Bus // the handlers of each module run here
	types    map[string][]string
}

func newRoutes(modules []string) *routes {
	r := &routes{run: map[string]bool{}, bus: es.NewBus(), byModule: map[string]*es.Bus{}, types: map[string][]string{}}
	for _, m := range modules {
		r.run[m] = true
		r.byModule[m] = es.NewBus()
	}
	return r
}

// module returns what module subscribes its handlers with.
func (r *routes) module(name string) moduleRoutes { return moduleRoutes{r: r, name: name} }

// moduleRoutes subscribes one module's handlers: it records the type for
// the module, and subscribes the handler only if the module runs here.
type moduleRoutes struct {
	r    *routes
	name string
}

// Subscribe records that the module handles msgType with h.
func (m moduleRoutes) Subscribe(msgType string, h func(ctx context.Context, m es.Message) error) {
	if !slices.Contains(m.r.types[m.name], msgType) {
		m.r.types[m.name] = append(m.r.types[m.name], msgType)
	}
	if m.r.run[m.name] {
		m.r.bus.Subscribe(msgType, h)
		m.r.byModule[m.name].Subscribe(msgType, h)
	}
}

// HandledTypes returns, by module, the message types its handlers handle,
// sorted; modules that handle none are left out. It is the routing table
// of the JetStream consumers (each module's consumer sees its types) and
// of the in-process bus alike, for every module, whichever this process
// runs.
func (a *App) HandledTypes() map[string][]string {
	out := map[string][]string{}
	for m, ts := range a.routes.types {
		out[m] = slices.Sorted(slices.Values(ts))
	}
	return out
}

// Modules returns the modules whose handlers this process runs.
func (a *App) Modules() []string {
	var out []string
	for _, m := range AllModules() {
		if a.routes.run[m] {
			out = append(out, m)
		}
	}
	return out
}

// subscriberRuns returns the runs of the JetStream consumers of the
// modules this process runs that handle messages.
func (a *App) subscriberRuns() []func(context.Context) error {
	js := a.jetStream
	var runs []func(context.Context) error
	for _, m := range slices.Sorted(maps.Keys(a.routes.run)) {
		types := a.routes.types[m]
		if len(types) == 0 {
			continue // concerts and users handle no messages
		}
		sub := natsjs.NewSubscriber(js.JetStream, js.ConsumerPrefix+m, js.Inbox, a.routes.byModule[m].Publish,
			natsjs.SubscriberConfig{Stream: js.Stream, Subject: js.Subject, Types: slices.Clone(types), Logger: a.cfg.Logger})
		runs = append(runs, sub.Run)
	}
	return runs
}
