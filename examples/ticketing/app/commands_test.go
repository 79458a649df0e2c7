package app_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/users"
)

// pausingStore is a memory store that runs a function before one append
// (with or without messages) passes through: a test puts another writer's command there, between a
// handler's load and its append, deterministically.
type pausingStore struct {
	*memory.Store
	pause atomic.Pointer[func()]
}

func (s *pausingStore) before(fn func()) { s.pause.Store(&fn) }

func (s *pausingStore) Append(ctx context.Context, a ...es.StreamAppend) ([]es.AppendResult, error) {
	if fn := s.pause.Swap(nil); fn != nil {
		(*fn)()
	}
	return s.Store.Append(ctx, a...)
}

func (s *pausingStore) AppendEnqueue(ctx context.Context, enq es.Enqueue, a ...es.StreamAppend) ([]es.AppendResult, error) {
	if fn := s.pause.Swap(nil); fn != nil {
		(*fn)()
	}
	return s.Store.AppendEnqueue(ctx, enq, a...)
}

func newApp(t *testing.T) (*app.App, *pausingStore) {
	t.Helper()
	readModels, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { readModels.Close() })
	store := &pausingStore{Store: memory.New(memory.Config{})}
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(readModels), Clock: estest.NewFakeClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	return a, store
}

func streamLen(t *testing.T, s es.Store, stream string) int {
	t.Helper()
	evs, err := es.Collect(s.ReadStream(context.Background(), stream, es.StreamQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func TestRegistrationIsIdempotentByUserID(t *testing.T) {
	ctx := context.Background()
	a, store := newApp(t)
	id := es.NewID()
	// A retry, with the address written differently, is the same
	// registration. (Each registration hashes a password, slowly: the
	// test keeps to a few.)
	for _, email := range []string{"ala@example.com", " ALA@example.com"} {
		if err := a.RegisterUser(ctx, id, email, "Ala", "correct horse", users.Customer); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := streamLen(t, store, users.Stream(id)), streamLen(t, store, users.EmailStream("ala@example.com")); n != 1 || m != 1 {
		t.Fatalf("user stream %d events, address stream %d; want 1 and 1", n, m)
	}
	// The same user ID with anything else is another registration.
	if err := a.RegisterUser(ctx, id, "ala@example.com", "Ala", "wrong horse", users.Customer); !errors.Is(err, users.ErrUserExists) {
		t.Errorf("other password: got %v, want ErrUserExists", err)
	}
	if err := a.RegisterUser(ctx, id, "ola@example.com", "Ala", "correct horse", users.Customer); !errors.Is(err, users.ErrUserExists) {
		t.Errorf("other address: got %v, want ErrUserExists", err)
	}
	if n := streamLen(t, store, users.EmailStream("ola@example.com")); n != 0 {
		t.Fatalf("a refused registration claimed its address (%d events)", n)
	}
	// Another user ID with the address is refused.
	if err := a.RegisterUser(ctx, es.NewID(), "ala@example.com", "Ala", "correct horse", users.Customer); !errors.Is(err, users.ErrEmailTaken) {
		t.Fatalf("got %v, want ErrEmailTaken", err)
	}
}

func TestARetriedRegistrationRacingItsFirstSucceeds(t *testing.T) {
	ctx := context.Background()
	a, store := newApp(t)
	id := es.NewID()
	register := func() error {
		return a.RegisterUser(ctx, id, "ala@example.com", "Ala", "correct horse", users.Customer)
	}
	// The retry runs to the end between the first attempt's load and its
	// append. Their password hashes differ (bcrypt salts), so the store
	// refuses the first attempt's events as other data under the same IDs;
	// the registration still succeeds, once.
	store.before(func() {
		if err := register(); err != nil {
			t.Errorf("retry: %v", err)
		}
	})
	if err := register(); err != nil {
		t.Fatal(err)
	}
	if n := streamLen(t, store, users.Stream(id)); n != 1 {
		t.Fatalf("user stream has %d events, want 1", n)
	}
	if _, err := a.LogIn(ctx, "ala@example.com", "correct horse"); err != nil {
		t.Fatal(err)
	}
}

func TestAConcertAndItsInventoryChangeTogether(t *testing.T) {
	ctx := context.Background()
	a, store := newApp(t)
	create := es.NewID()
	for range 2 { // a retried creation is a repeat
		if err := a.CreateConcert(ctx, create, concert("c1", 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.CreateConcert(ctx, es.NewID(), concert("c1", 10)); !errors.Is(err, concerts.ErrConcertExists) {
		t.Fatalf("got %v, want ErrConcertExists", err)
	}
	if err := a.Reserve(ctx, es.NewID(), reservations.Reserve{ConcertID: "c1", ReservationID: "r1", UserID: "fan", Seats: map[string]int{"GA": 4}}); err != nil {
		t.Fatal(err)
	}
	// The inventory refuses a capacity below the seats reserved: the new
	// price is not stored either.
	vip := concerts.TicketType{Name: "GA", Price: money.Money{Amount: 99900, Currency: "PLN"}}
	err := a.UpdateTicketTypes(ctx, es.NewID(), concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{vip}, Capacity: map[string]int{"GA": 3}})
	if !errors.Is(err, reservations.ErrCapacityBelowReserved) {
		t.Fatalf("got %v, want ErrCapacityBelowReserved", err)
	}
	if n := streamLen(t, store, concerts.Stream("c1")); n != 1 {
		t.Fatalf("concert stream has %d events after a refused update, want 1", n)
	}
	// A fan reserves between the cancellation's load and its append: the
	// cancellation is decided again, and both streams change.
	store.before(func() {
		if err := a.Reserve(ctx, es.NewID(), reservations.Reserve{ConcertID: "c1", ReservationID: "r2", UserID: "fan", Seats: map[string]int{"GA": 1}}); err != nil {
			t.Error(err)
		}
	})
	if err := a.CancelConcert(ctx, es.NewID(), concerts.CancelConcert{ConcertID: "c1", Reason: "storm"}); err != nil {
		t.Fatal(err)
	}
	c, _, _ := a.Concerts.Load(ctx, concerts.Stream("c1"))
	inv, _ := a.Inventory(ctx, "c1")
	if !c.Cancelled || !inv.Closed || inv.Reserved["GA"] != 5 {
		t.Fatalf("concert cancelled %v, inventory closed %v with %d reserved; want true, true, 5", c.Cancelled, inv.Closed, inv.Reserved["GA"])
	}
}
