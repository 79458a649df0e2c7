package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/courier"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// TestTicketsFromIssueToGate plays the tickets module inside the app on
// SQLite: the orders process's IssueTickets (enqueued here by hand) issues
// tickets, the relay mails one and ships the other, gates admit each
// once, an admin resends, and a refund voids them.
func TestTicketsFromIssueToGate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mailDir := t.TempDir()
	folder, err := mailer.NewFolder(mailDir, "tickets@example.com")
	if err != nil {
		t.Fatal(err)
	}
	fake, err := courier.StartFake("127.0.0.1:0", courier.FakeConfig{DeliverAfter: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	clock := estest.NewFakeClock(start)
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Clock: clock, RelayPollInterval: 5 * time.Millisecond,
		Mailer: folder, Courier: courier.NewClient(fake.URL(), nil)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)

	enqueue := func(key string, v any) {
		t.Helper()
		m, err := es.NewMessage(a.Registry(), key, v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{m}}); err != nil {
			t.Fatal(err)
		}
	}
	// waitFor waits until a ticket's delivery status reads want, moving
	// the clock a minute each time round, so that parcels are tracked.
	waitFor := func(ticketID string, want tickets.DeliveryStatus) {
		t.Helper()
		for {
			if err := a.WaitForReadModels(ctx); err != nil {
				t.Fatal(err)
			}
			d, err := tickets.DeliveryStatusOf(ctx, store.DB(), ticketID)
			if err == nil && d.Status == want {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("delivery of %s: %+v, %v; want %s", ticketID, d, err, want)
			}
			clock.Advance(time.Minute)
			time.Sleep(5 * time.Millisecond)
		}
	}

	enqueue("o1", tickets.IssueTickets{OrderID: "o1", UserID: "ola", ConcertID: "warsaw", Seats: map[string]int{"GA": 1},
		Delivery: tickets.Delivery{Method: tickets.ByEmail, Email: "ola@example.com"}})
	enqueue("o2", tickets.IssueTickets{OrderID: "o2", UserID: "ola", ConcertID: "warsaw", Seats: map[string]int{"VIP": 1},
		Delivery: tickets.Delivery{Method: tickets.ByCourier, Address: &tickets.PostalAddress{Name: "Ola Nowak", Street: "Marszałkowska 1",
			City: "Warszawa", PostalCode: "00-001", Country: "PL"}}})
	mailed, printed := tickets.TicketID("o1", "GA", 1), tickets.TicketID("o2", "VIP", 1)
	waitFor(mailed, tickets.StatusEmailed)
	waitFor(printed, tickets.StatusShipped)
	fake.Deliver(fake.Shipments()[0].TrackingNumber)
	waitFor(printed, tickets.StatusDelivered)
	if files, _ := filepath.Glob(filepath.Join(mailDir, "*.eml")); len(files) != 1 {
		t.Errorf("%d .eml files, want 1", len(files))
	}

	// Many gates scan the mailed ticket at once: one admits it.
	details, err := tickets.TicketDetailsOf(ctx, store.DB(), mailed)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
		used     int
	)
	for i := range 32 {
		wg.Go(func() {
			_, err := a.ScanTicket(ctx, es.NewID(), tickets.Scan{Code: details.Code, ConcertID: "warsaw", Gate: []string{"A", "B", "C", "D"}[i%4]})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, tickets.ErrAlreadyUsed):
				used++
			default:
				t.Errorf("scan: %v", err)
			}
		})
	}
	wg.Wait()
	if admitted != 1 || used != 31 {
		t.Fatalf("%d admitted, %d refused as used; want 1 and 31", admitted, used)
	}
	if err := a.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := tickets.ValidationStatusOf(ctx, store.DB(), mailed); err != nil || v.Status != tickets.TicketUsed {
		t.Errorf("validation status %+v, %v", v, err)
	}

	// An admin resends the printed ticket by e-mail, twice with one ID.
	resend := es.NewID()
	to := &tickets.Delivery{Method: tickets.ByEmail, Email: "ola@example.com"}
	for range 2 {
		if err := a.ResendTicket(ctx, resend, printed, to); err != nil && !errors.Is(err, tickets.ErrDeliveryInProgress) {
			t.Fatal(err)
		}
	}
	waitFor(printed, tickets.StatusEmailed)
	if files, _ := filepath.Glob(filepath.Join(mailDir, "*.eml")); len(files) != 2 {
		t.Errorf("%d .eml files, want 2", len(files))
	}

	// The second order is refunded: its ticket is refused at the gate.
	enqueue("o2", tickets.VoidTickets{OrderID: "o2", Reason: "refunded"})
	for {
		if err := a.WaitForReadModels(ctx); err != nil {
			t.Fatal(err)
		}
		if v, err := tickets.ValidationStatusOf(ctx, store.DB(), printed); err == nil && v.Status == tickets.TicketVoid {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the ticket was not voided")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d, err := tickets.TicketDetailsOf(ctx, store.DB(), printed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ScanTicket(ctx, es.NewID(), tickets.Scan{Code: d.Code, ConcertID: "warsaw", Gate: "A"}); !errors.Is(err, tickets.ErrTicketVoided) {
		t.Errorf("scan of a voided ticket: %v", err)
	}
	sum, err := tickets.ConcertTicketSummaryOf(ctx, store.DB(), "warsaw")
	if err != nil || len(sum.Types) != 2 || sum.Types[0].Used != 1 || sum.Types[1].Voided != 1 {
		t.Errorf("summary %+v, %v", sum, err)
	}
	if ut, err := tickets.UserTickets(ctx, store.DB(), "ola"); err != nil || len(ut) != 2 {
		t.Errorf("ola's tickets %+v, %v", ut, err)
	}
}

func TestWithoutAnOutboxThereAreNoTickets(t *testing.T) {
	ctx := context.Background()
	rm, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rm.Close()
	a, err := app.New(app.Config{Events: noOutbox{rm}, ReadModels: app.SQLiteReadModels(rm)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ScanTicket(ctx, es.NewID(), tickets.Scan{}); !errors.Is(err, app.ErrNoTickets) {
		t.Errorf("scan: %v", err)
	}
	if err := a.ResendTicket(ctx, es.NewID(), "t", nil); !errors.Is(err, app.ErrNoTickets) {
		t.Errorf("resend: %v", err)
	}
}

// noOutbox hides a store's outbox.
type noOutbox struct{ es.Store }
