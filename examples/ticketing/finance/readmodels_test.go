package finance_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
)

// onBothStores runs a projection spec on SQLite and on PostgreSQL, each
// event also redelivered and applied twice: the read model's queries are
// the same on both.
func onBothStores[V any](t *testing.T, p sqlprojection.Projection, view func(context.Context, *sql.DB) (V, error), given []any, want V) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		reg := registry(t)
		rm := sqlitetest.ReadModel(t, sqlite.FromPortable(p), view)
		estest.Projection(t, reg, rm).Given(given...).Redelivered().AppliedTwice().Then(want)
	})
	t.Run("postgres", func(t *testing.T) {
		reg := registry(t)
		estest.Projection(t, reg, pgReadModel(t, p, view)).Given(given...).Redelivered().AppliedTwice().Then(want)
	})
}

// pgReadModel is pgtest.ReadModel for queries written against
// database/sql, as the application's are.
func pgReadModel[V any](t *testing.T, p sqlprojection.Projection, view func(context.Context, *sql.DB) (V, error)) estest.ReadModel[V] {
	t.Helper()
	store := pgtest.NewStore(t, postgres.Config{})
	cfg := store.Pool().Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = store.Schema()
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return &pgModel[V]{store: store, name: p.Name, consumer: store.Consumer(postgres.FromPortable(p)), db: db, view: view}
}

type pgModel[V any] struct {
	store    *postgres.Store
	name     string
	consumer es.Consumer
	db       *sql.DB
	view     func(context.Context, *sql.DB) (V, error)
}

func (m *pgModel[V]) HandleEvent(ctx context.Context, e es.Event) error {
	return m.consumer.Handle(ctx, []es.Event{e})
}

func (m *pgModel[V]) ReapplyEvent(ctx context.Context, e es.Event) error {
	if err := m.store.SaveCheckpoint(ctx, m.name, e.Position-1); err != nil {
		return err
	}
	return m.consumer.Handle(ctx, []es.Event{e})
}

func (m *pgModel[V]) View(ctx context.Context) (V, error) { return m.view(ctx, m.db) }

func eur(a int64) money.Money { return money.Money{Amount: a, Currency: "EUR"} }

// story is the finance events of a few orders: o1 paid and partly
// refunded (a second refund failed), o2 declined, o3 paid and refunded
// in full, o4 and o5 paid in euros.
func story() []any {
	p2 := requested()
	p2.PaymentID, p2.OrderID, p2.ConcertID, p2.Amount, p2.RequestedAt = "p2", "o2", "krakow", eur(10000), t0.Add(time.Hour)
	p2.Lines = []finance.InvoiceLine{{Description: "Seat", Quantity: 1, UnitPrice: eur(10000)}}
	p3 := requested()
	p3.PaymentID, p3.OrderID, p3.UserID, p3.Amount = "p3", "o3", "ala", pln(30000)
	p3.Lines = []finance.InvoiceLine{{Description: "Seat", Quantity: 1, UnitPrice: pln(30000)}}
	euro := func(pid, oid, concert string) []any {
		r := requested()
		r.PaymentID, r.OrderID, r.UserID, r.ConcertID, r.Amount = pid, oid, "ala", concert, eur(7000)
		r.Lines = []finance.InvoiceLine{{Description: "Seat", Quantity: 1, UnitPrice: eur(7000)}}
		return []any{r, finance.PaymentCaptured{PaymentID: pid, OrderID: oid, OrganizerID: "live", Amount: eur(7000), GatewayID: "pi_" + pid, CapturedAt: t0}}
	}
	inv3 := issued()
	inv3.InvoiceID, inv3.Number, inv3.Seq, inv3.OrderID, inv3.PaymentID, inv3.UserID = "i3", "live/2026/000002", 2, "o3", "p3", "ala"
	inv3.Lines, inv3.Total = p3.Lines, p3.Amount
	return []any{
		estest.InStream(finance.PaymentStream("o1"), requested(), captured(), refundRequested("r1", 20000), refundCompleted("r1", 20000, 20000),
			refundRequested("r2", 10000), finance.RefundFailed{PaymentID: "p1", OrderID: "o1", RefundID: "r2", Reason: "expired card", FailedAt: t0}),
		estest.InStream(finance.PaymentStream("o2"), p2, finance.PaymentDeclined{PaymentID: "p2", OrderID: "o2", Code: "card_declined", Reason: "declined", FailedAt: t0.Add(time.Hour)}),
		estest.InStream(finance.PaymentStream("o3"), p3,
			finance.PaymentCaptured{PaymentID: "p3", OrderID: "o3", OrganizerID: "live", Amount: pln(30000), GatewayID: "pi_3", CapturedAt: t0},
			finance.RefundRequested{PaymentID: "p3", OrderID: "o3", RefundID: "r3", Amount: pln(30000), RequestedAt: t0},
			finance.RefundCompleted{PaymentID: "p3", OrderID: "o3", OrganizerID: "live", RefundID: "r3", Amount: pln(30000), TotalRefunded: pln(30000), GatewayRefundID: "re_3", CompletedAt: t0}),
		estest.InStream(finance.PaymentStream("o4"), euro("p4", "o4", "krakow")...),
		estest.InStream(finance.PaymentStream("o5"), euro("p5", "o5", "warsaw")...),
		estest.InStream(finance.InvoiceStream("o1"), issued(), credited("1", 20000)),
		estest.InStream(finance.InvoiceStream("o3"), inv3),
	}
}

func TestUserPaymentsListAUsersPaymentsWithTheirStatus(t *testing.T) {
	onBothStores(t, finance.UserPaymentsProjection(registry(t)), func(ctx context.Context, db *sql.DB) ([]finance.UserPayment, error) {
		return finance.UserPayments(ctx, db, "ola")
	}, story(), []finance.UserPayment{
		{PaymentID: "p2", OrderID: "o2", Amount: eur(10000), Refunded: eur(0), Status: finance.Failed, RequestedAt: t0.Add(time.Hour)},
		{PaymentID: "p1", OrderID: "o1", Amount: pln(50000), Refunded: pln(20000), Status: finance.Succeeded, RequestedAt: t0},
	})
}

func TestPaymentDetailsShowRefundsAndFailures(t *testing.T) {
	view := func(ctx context.Context, db *sql.DB) ([]finance.PaymentDetails, error) {
		p1, err := finance.PaymentDetailsOf(ctx, db, "p1")
		if err != nil {
			return nil, err
		}
		p2, err := finance.PaymentDetailsOf(ctx, db, "p2")
		return []finance.PaymentDetails{p1, p2}, err
	}
	onBothStores(t, finance.PaymentDetailsProjection(registry(t)), view, story(), []finance.PaymentDetails{
		{PaymentID: "p1", OrderID: "o1", UserID: "ola", ConcertID: "warsaw", OrganizerID: "live", Amount: pln(50000), Refunded: pln(20000),
			Status: finance.Succeeded, GatewayID: "pi_1", RequestedAt: t0, SettledAt: t0, Refunds: []finance.RefundDetails{
				{RefundID: "r1", Amount: pln(20000), Reason: "cancelled", Status: "completed", GatewayRefundID: "re_r1"},
				{RefundID: "r2", Amount: pln(10000), Reason: "cancelled", Status: "failed"},
			}},
		{PaymentID: "p2", OrderID: "o2", UserID: "ola", ConcertID: "krakow", OrganizerID: "live", Amount: eur(10000), Refunded: eur(0),
			Status: finance.Failed, FailureCode: "card_declined", FailureReason: "declined", RequestedAt: t0.Add(time.Hour), SettledAt: t0.Add(time.Hour)},
	})
}

func TestUserInvoicesShowWhatWasCredited(t *testing.T) {
	onBothStores(t, finance.UserInvoicesProjection(registry(t)), func(ctx context.Context, db *sql.DB) ([]finance.UserInvoice, error) {
		return finance.UserInvoices(ctx, db, "ola")
	}, story(), []finance.UserInvoice{
		{InvoiceID: "i1", Number: "live/2026/000001", OrderID: "o1", ConcertID: "warsaw", Total: pln(50000), Credited: pln(20000), IssuedAt: t0},
	})
}

func TestInvoiceDetailsShowLinesBuyerAndCreditNotes(t *testing.T) {
	inv := issued()
	onBothStores(t, finance.InvoiceDetailsProjection(registry(t)), func(ctx context.Context, db *sql.DB) (finance.InvoiceDetails, error) {
		return finance.InvoiceDetailsOf(ctx, db, "o1")
	}, story(), finance.InvoiceDetails{InvoiceID: "i1", Number: "live/2026/000001", OrderID: "o1", PaymentID: "p1", UserID: "ola",
		OrganizerID: "live", ConcertID: "warsaw", Buyer: inv.Buyer, Lines: inv.Lines, Total: pln(50000), IssuedAt: t0,
		CreditNotes: []finance.CreditNote{{CreditNoteID: "c-1", Number: "live/2026/C000001", RefundID: "1", Reason: "cancelled", Amount: pln(20000), IssuedAt: t0}}})
}

func TestOrganizerRevenueIsSoldRefundedAndNetPerConcertAndCurrency(t *testing.T) {
	onBothStores(t, finance.OrganizerRevenueProjection(registry(t)), func(ctx context.Context, db *sql.DB) ([]finance.Revenue, error) {
		return finance.OrganizerRevenue(ctx, db, "live")
	}, story(), []finance.Revenue{
		{ConcertID: "krakow", Sold: eur(7000), Refunded: eur(0), Net: eur(7000), Payments: 1},
		{ConcertID: "warsaw", Sold: eur(7000), Refunded: eur(0), Net: eur(7000), Payments: 1},
		{ConcertID: "warsaw", Sold: pln(80000), Refunded: pln(50000), Net: pln(30000), Payments: 2},
	})
}
