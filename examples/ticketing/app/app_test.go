package app_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/users"
)

var start = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func concert(id string, seats int) concerts.CreateConcert {
	return concerts.CreateConcert{ConcertID: id, Name: "Flash Sale", Artist: "Dawid Podsiadło", StartsAt: start.AddDate(0, 3, 0),
		Venue: "PGE Narodowy, Warsaw", OrganizerID: "organizer-1", TicketTypes: []concerts.TicketType{{Name: "GA", Price: money.Money{Amount: 25000, Currency: "PLN"}}},
		Capacity: map[string]int{"GA": seats}}
}

// run starts a's background work and returns a function that stops it and
// waits for it.
func run(t *testing.T, a *app.App) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func noOversell(t *testing.T, events es.Store, readModels app.ReadModelStore) {
	ctx := context.Background()
	a, err := app.New(app.Config{Events: events, ReadModels: readModels, Clock: estest.NewFakeClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	// A second instance on the same store stands for a second process:
	// its handlers do not queue behind the first's, so the two conflict
	// and only the expected version keeps them from overselling.
	b, err := app.New(app.Config{Events: events, ReadModels: readModels, Clock: estest.NewFakeClock(start)})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateConcert(ctx, es.NewID(), concert("flash", 100)); err != nil {
		t.Fatal(err)
	}
	var ok, soldOut atomic.Int64
	var wg sync.WaitGroup
	// 1,000 buyers at once, half through each instance. Within an
	// instance, commands for one stream queue rather than retry.
	for i := range 1000 {
		wg.Go(func() {
			id := es.NewID()
			via := a
			if i%2 == 1 {
				via = b
			}
			err := via.Reserve(ctx, id, reservations.Reserve{ConcertID: "flash", ReservationID: id,
				UserID: fmt.Sprintf("fan-%d", i), Seats: map[string]int{"GA": 1}})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, app.ErrSoldOut):
				soldOut.Add(1)
			default:
				t.Errorf("buyer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 100 || soldOut.Load() != 900 {
		t.Fatalf("%d reservations, %d sold out; want 100 and 900", ok.Load(), soldOut.Load())
	}
	inv, err := a.Inventory(ctx, "flash")
	if err != nil {
		t.Fatal(err)
	}
	held := 0
	for e, err := range events.ReadAll(ctx, es.AllQuery{Categories: []string{reservations.ReservationCategory}}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == "reservations.SeatsReserved" {
			held++
		}
	}
	if inv.Reserved["GA"] != 100 || held != 100 {
		t.Fatalf("streams: %d reserved in the inventory, %d reservations", inv.Reserved["GA"], held)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.WaitForReadModels(wctx); err != nil {
		t.Fatal(err)
	}
	d, err := app.ConcertDetails(ctx, readModels.DB(), "flash")
	if err != nil {
		t.Fatal(err)
	}
	if d.TicketTypes[0].Capacity != 100 || d.TicketTypes[0].Left != 0 {
		t.Errorf("concert details: %+v, want capacity 100 and none left", d.TicketTypes[0])
	}
	cr, err := reservations.ConcertReservationsOf(ctx, readModels.DB(), "flash")
	if err != nil {
		t.Fatal(err)
	}
	if cr.Held["GA"] != 100 || len(cr.Active) != 100 {
		t.Errorf("concert reservations: %d held in %d reservations", cr.Held["GA"], len(cr.Active))
	}
}

func TestNoOversellOnSQLite(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ticketing.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	noOversell(t, store, app.SQLiteReadModels(store))
}

// On PostgreSQL, read models included.
func TestNoOversellOnPostgres(t *testing.T) {
	events := pgtest.NewStore(t, postgres.Config{})
	readModels, err := app.OpenPostgresReadModels(events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { readModels.Close() })
	noOversell(t, events, readModels)
}

func TestExpiredReservationsReleaseTheirSeatsAcrossARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ticketing.db")
	clock := estest.NewFakeClock(start)
	open := func() (*sqlite.Store, *app.App) {
		store, err := sqlite.Open(ctx, path, sqlite.Config{})
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Clock: clock, Hold: 10 * time.Minute, RelayPollInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return store, a
	}

	store1, a1 := open()
	if _, ok := any(store1).(es.Outbox); !ok {
		t.Skip("the SQLite store has no outbox yet")
	}
	stop1 := run(t, a1)
	if err := a1.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"kept", "lapsed"} {
		if err := a1.Reserve(ctx, es.NewID(), reservations.Reserve{ConcertID: "c1", ReservationID: r, UserID: "fan-" + r, Seats: map[string]int{"GA": 3}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a1.ConfirmReservation(ctx, es.NewID(), "c1", "kept"); err != nil {
		t.Fatal(err)
	}
	// Wait until the expiry process has scheduled (and, for "kept",
	// cancelled) the deadlines; then stop the first instance before they
	// are due.
	waitFor(t, func() bool {
		var n int
		for e, err := range store1.ReadAll(ctx, es.AllQuery{Categories: []string{reservations.ExpiryName}}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Type == "reservations.ExpiryCancelled" || e.Type == "reservations.ExpiryScheduled" {
				n++
			}
		}
		return n == 3
	})
	stop1()
	store1.Close()

	clock.Advance(11 * time.Minute)
	store2, a2 := open()
	defer store2.Close()
	run(t, a2)
	waitFor(t, func() bool {
		r, err := a2.Reservation(ctx, "lapsed")
		if err != nil {
			t.Fatal(err)
		}
		return r.Status == reservations.Expired
	})
	inv, _ := a2.Inventory(ctx, "c1")
	kept, _ := a2.Reservation(ctx, "kept")
	if kept.Status != reservations.Confirmed || inv.Left("GA") != 7 {
		t.Fatalf("kept: %s, left %d; want confirmed and 7", kept.Status, inv.Left("GA"))
	}
	if err := a2.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := app.ConcertDetails(ctx, store2.DB(), "c1")
	if err != nil || d.TicketTypes[0].Left != 7 {
		t.Fatalf("concert details: %+v, %v; want 7 left", d.TicketTypes, err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAnEmailRegistersOnceUnderConcurrentRegistrations(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ticketing.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store)})
	if err != nil {
		t.Fatal(err)
	}
	var ok, taken atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			// Differently written, one address.
			email := []string{"ala@example.com", "ALA@example.com", " Ala@Example.com"}[i%3]
			err := a.RegisterUser(ctx, es.NewID(), email, "Ala", "correct horse", users.Customer)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, users.ErrEmailTaken):
				taken.Add(1)
			default:
				t.Errorf("registration %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || taken.Load() != 19 {
		t.Fatalf("%d registered, %d taken; want 1 and 19", ok.Load(), taken.Load())
	}
	u, err := a.LogIn(ctx, "Ala@EXAMPLE.com", "correct horse")
	if err != nil || u.Email != "ala@example.com" {
		t.Fatalf("log in: %+v, %v", u, err)
	}
	if _, err := a.LogIn(ctx, "ala@example.com", "wrong horse"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := a.LogIn(ctx, "ola@example.com", "correct horse"); !errors.Is(err, users.ErrInvalidCredentials) {
		t.Fatalf("unknown address: %v", err)
	}
}

// due counts the outbox's messages due at now and not delivered yet:
// the work left. Deadlines further ahead (a payment's give-up time, a
// hold's end) are not work left.
func due(t *testing.T, store *sqlite.Store, now time.Time) int64 {
	t.Helper()
	var n int64
	if err := store.DB().QueryRowContext(context.Background(), `SELECT count(*) FROM es_outbox
		WHERE delivered_at IS NULL AND cancelled_at IS NULL AND coalesce(deliver_at, 0) <= ?`, now.UnixNano()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
