package app_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
)

// TestPaymentsRunThroughTheOutbox plays what the orders process does: it
// enqueues RequestPayment and RefundPayment messages and waits for the
// outcomes, with the fake gateway, one buyer's card declined, events and
// outbox on SQLite or on PostgreSQL.
func TestPaymentsRunThroughTheOutbox(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { paymentsRunThroughTheOutbox(t, nil) })
	t.Run("postgres", func(t *testing.T) { paymentsRunThroughTheOutbox(t, pgtest.NewStore(t, postgres.Config{})) })
}

func paymentsRunThroughTheOutbox(t *testing.T, pg *postgres.Store) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var events es.Outbox = store
	delivered := func(typ string) int {
		var n int
		var err error
		if pg != nil {
			err = pg.Pool().QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{pg.Schema(), "outbox"}.Sanitize()+` WHERE type = $1 AND delivered_at IS NOT NULL`, typ).Scan(&n)
		} else {
			err = store.DB().QueryRowContext(ctx, `SELECT count(*) FROM es_outbox WHERE type = $1 AND delivered_at IS NOT NULL`, typ).Scan(&n)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if pg != nil {
		events = pg
	}
	gw := finance.NewFakeGateway()
	gw.DeclineUser("ala", "card_declined")
	a, err := app.New(app.Config{Events: events, ReadModels: app.SQLiteReadModels(store), Payments: gw, RelayPollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Stop the application before the deferred Close of its store.
	defer run(t, a)()
	if err := a.SetBillingInfo(ctx, es.NewID(), finance.SetBillingInfo{UserID: "ola",
		Info: finance.BillingInfo{Name: "Ola Nowak", Email: "ola@example.com", Address: "Warszawa"}}); err != nil {
		t.Fatal(err)
	}
	price := money.Money{Amount: 25000, Currency: "PLN"}
	send := func(key string, v any) {
		t.Helper()
		m, err := es.NewMessage(a.Registry(), key, v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := events.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{m}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, buyer := range []string{"ola", "ala"} {
		send("pay-"+buyer, finance.RequestPayment{PaymentID: "pay-" + buyer, OrderID: "order-" + buyer, UserID: buyer,
			ConcertID: "warsaw", OrganizerID: "live", Amount: price,
			Lines: []finance.InvoiceLine{{Description: "Standing", Quantity: 1, UnitPrice: price}}})
	}
	waitFor(t, func() bool {
		return delivered("finance.PaymentSucceeded") == 1 && delivered("finance.PaymentFailed") == 1
	})
	send("pay-ola", finance.RefundPayment{PaymentID: "pay-ola", RefundID: "refund-1", OrderID: "order-ola", Amount: money.Money{Amount: 5000, Currency: "PLN"}, Reason: "seat change"})
	waitFor(t, func() bool { return delivered("finance.PaymentRefunded") == 1 })
	waitFor(t, func() bool {
		inv, err := finance.InvoiceDetailsOf(ctx, store.DB(), "order-ola")
		return err == nil && len(inv.CreditNotes) == 1
	})
	if err := a.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	db := store.DB()
	if d, err := finance.PaymentDetailsOf(ctx, db, "pay-ala"); err != nil || d.Status != finance.Failed || d.FailureCode != "card_declined" {
		t.Errorf("ala's payment %+v, %v; want failed, card declined", d, err)
	}
	inv, err := finance.InvoiceDetailsOf(ctx, db, "order-ola")
	if err != nil || inv.Number != finance.InvoiceNumber("live", inv.IssuedAt.Year(), 1) || inv.Buyer.Name != "Ola Nowak" ||
		len(inv.CreditNotes) != 1 || inv.CreditNotes[0].Amount.Amount != 5000 {
		t.Errorf("ola's invoice %+v, %v", inv, err)
	}
	if _, err := finance.InvoiceDetailsOf(ctx, db, "order-ala"); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("ala's declined order has an invoice: %v", err)
	}
	rev, err := finance.OrganizerRevenue(ctx, db, "live")
	if err != nil || len(rev) != 1 || rev[0].Net.Amount != 20000 {
		t.Errorf("revenue %+v, %v; want 200.00 PLN net", rev, err)
	}
	if gw.Captured() != 1 {
		t.Errorf("%d charges captured, want 1", gw.Captured())
	}
}
