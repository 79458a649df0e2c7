package app_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/natsjs"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/internal/natstest"
)

func TestModulesAreParsedByName(t *testing.T) {
	got, err := app.ParseModules(" orders, finance,orders ")
	if err != nil || !slices.Equal(got, []string{"orders", "finance"}) {
		t.Errorf("ParseModules: %v, %v", got, err)
	}
	for _, bad := range []string{"orders,billing", "", " , "} {
		if _, err := app.ParseModules(bad); !errors.Is(err, app.ErrUnknownModule) {
			t.Errorf("ParseModules(%q): %v, want ErrUnknownModule", bad, err)
		}
	}
}

// On the in-process bus, a process must run every module: the messages
// of the modules it left out would be delivered to nobody.
func TestSomeModulesNeedJetStream(t *testing.T) {
	readModels := memoryReadModels(t)
	_, err := app.New(app.Config{Events: memory.New(memory.Config{}), ReadModels: readModels, PasswordCost: 4, Modules: []string{"orders"}})
	if err == nil {
		t.Fatal("New ran only the orders module on the in-process bus")
	}
	if _, err := app.New(app.Config{Events: memory.New(memory.Config{}), ReadModels: readModels, PasswordCost: 4, Modules: []string{"ordes"}}); !errors.Is(err, app.ErrUnknownModule) {
		t.Errorf("unknown module: %v, want ErrUnknownModule", err)
	}
}

// Which module handles which message type is what the modules subscribe
// as they are wired, whatever this process runs.
func TestEachHandledTypeBelongsToOneModule(t *testing.T) {
	a, err := app.New(app.Config{Events: memory.New(memory.Config{}), ReadModels: memoryReadModels(t), PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	handled := a.HandledTypes()
	owner := map[string]string{}
	for m, types := range handled {
		if !slices.Contains(app.AllModules(), m) {
			t.Errorf("types routed to %q, which is no module", m)
		}
		for _, typ := range types {
			if owner[typ] != "" {
				t.Errorf("%s is handled by %s and %s", typ, owner[typ], m)
			}
			owner[typ] = m
		}
	}
	// A few the purchase cannot do without, as a check that the table is
	// filled at all.
	for typ, m := range map[string]string{"orders.PlaceOrder": "orders", "orders.ReserveSeats": "reservations",
		"finance.RequestPayment": "finance", "tickets.IssueTickets": "tickets", "carts.RestoreItems": "carts",
		"finance.PaymentSucceeded": "orders"} {
		if owner[typ] != m {
			t.Errorf("%s is handled by %q, want %s", typ, owner[typ], m)
		}
	}
	b, err := app.New(app.Config{Events: memory.New(memory.Config{}), ReadModels: memoryReadModels(t), PasswordCost: 4, Modules: []string{"finance"},
		JetStream: &app.JetStreamConfig{JetStream: noJetStream{}}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(handled, b.HandledTypes()); diff != "" {
		t.Errorf("a process running only finance routes otherwise (-all +finance):\n%s", diff)
	}
}

// Through JetStream, each process runs one consumer per module, and each
// consumer must see exactly the message types its module handles
// (HandledTypes, which the in-process bus delivers by): one process per
// module here, each with an inbox that records what reaches it instead
// of handling it. Every registered type is published once, all on one
// key, so that each consumer sees them in order; then each module's
// types once more, as fences: when a consumer has seen its fences, it
// has seen (or skipped) all of the first round.
func TestJetStreamTakesEachMessageTypeToTheModuleThatHandlesIt(t *testing.T) {
	url := natstest.Start(t)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	inbox := &recordingInbox{seen: map[string][]string{}}
	var (
		handled map[string][]string
		apps    = map[string]*app.App{}
	)
	for _, m := range app.AllModules() {
		store, err := sqlite.Open(ctx, t.TempDir()+"/events.db", sqlite.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), PasswordCost: 4, Modules: []string{m},
			JetStream: &app.JetStreamConfig{JetStream: js, Inbox: inbox}})
		if err != nil {
			t.Fatal(err)
		}
		handled, apps[m] = a.HandledTypes(), a
	}
	var runs sync.WaitGroup
	t.Cleanup(runs.Wait) // before the stores close
	t.Cleanup(cancel)    // before runs.Wait
	for m, a := range apps {
		runs.Go(func() {
			if err := a.RunProcesses(ctx); err != nil {
				t.Errorf("module %s: %v", m, err)
			}
		})
	}

	reg, err := app.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := natsjs.NewPublisher(ctx, js, natsjs.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	publish := func(typ string) string {
		t.Helper()
		m := es.Message{ID: es.NewID(), Key: "one-key", Type: typ, SchemaVersion: 1, Data: []byte(`{}`)}
		if err := pub.Publish(ctx, m); err != nil {
			t.Fatalf("publish %s: %v", typ, err)
		}
		return m.ID
	}
	types := map[string]string{} // message ID -> type, of the first round
	for _, ti := range reg.Types() {
		types[publish(ti.Name)] = ti.Name
	}
	fences := map[string]bool{}
	for _, ts := range handled {
		for _, typ := range ts {
			fences[publish(typ)] = true
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for inbox.count(fences) < len(fences) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d fences arrived in 2 minutes", inbox.count(fences), len(fences))
		}
		time.Sleep(20 * time.Millisecond)
	}

	got := map[string][]string{}
	for consumer, ids := range inbox.snapshot() {
		for _, id := range ids {
			if typ, ok := types[id]; ok {
				got[consumer] = append(got[consumer], typ)
			}
		}
	}
	want := map[string][]string{}
	for m, ts := range handled {
		want["ticketing-"+m] = ts
	}
	for c := range got {
		slices.Sort(got[c])
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("types per consumer (-handled +reached):\n%s", diff)
	}
	if len(slices.Collect(maps.Keys(want))) < 5 {
		t.Errorf("only %d modules handle messages: %v", len(want), want)
	}
}

// recordingInbox records, by consumer, the IDs of the messages that
// reach it, without handling them.
type recordingInbox struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (r *recordingInbox) Handle(_ context.Context, consumer, messageID string, _ func(context.Context) error) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.seen[consumer], messageID) {
		r.seen[consumer] = append(r.seen[consumer], messageID)
	}
	return false, nil
}

func (r *recordingInbox) count(ids map[string]bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, seen := range r.seen {
		for _, id := range seen {
			if ids[id] {
				n++
			}
		}
	}
	return n
}

func (r *recordingInbox) snapshot() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for c, ids := range r.seen {
		out[c] = slices.Clone(ids)
	}
	return out
}

// noJetStream is a JetStream client for an App that is built and not run.
type noJetStream struct{ jetstream.JetStream }

func memoryReadModels(t *testing.T) app.ReadModelStore {
	t.Helper()
	s, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return app.SQLiteReadModels(s)
}
