package app_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/internal/standin"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
)

// The end-to-end tests of the purchase run the app on a SQLite file with
// the finance and tickets modules stood in for by package standin. What
// they need of finance is the interface payer: to run them against the
// finance module's fake gateway, make newPayer return an adapter of it.

const (
	testHold  = 10 * time.Minute
	testGrace = 5 * time.Minute
)

// payer answers the finance (and tickets) messages, declining or leaving
// pending the payments cfg says, completes a pending payment, and tells
// what a payment captured and refunded.
type payer interface {
	Subscribe(bus *es.Bus)
	Complete(ctx context.Context, paymentID string) error
	Ledger(ctx context.Context, paymentID string) (charged, refunded int64, err error)
}

func newPayer(store es.Outbox, cfg standin.Config) (payer, error) { return standin.New(store, cfg) }

type shop struct {
	*app.App
	store    *sqlite.Store
	clock    *estest.FakeClock
	payments payer
}

func newShop(t *testing.T, payments standin.Config) *shop {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ticketing.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	r, err := newPayer(store, payments)
	if err != nil {
		t.Fatal(err)
	}
	clock := estest.NewFakeClock(start)
	a, err := app.New(app.Config{Events: store, ReadModels: store, Clock: clock, Hold: testHold, PaymentGrace: testGrace,
		RelayPollInterval: 5 * time.Millisecond, Attach: r.Subscribe})
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	return &shop{App: a, store: store, clock: clock, payments: r}
}

var byEmail = carts.Delivery{Method: carts.ByEmail, Email: "fan@example.com"}

// buy fills the user's cart and checks it out, returning the order of the
// concert.
func (s *shop) buy(t *testing.T, user, concertID string, n int, d carts.Delivery) string {
	t.Helper()
	ctx := context.Background()
	if err := s.AddToCart(ctx, es.NewID(), user, concertID, "GA", n); err != nil {
		t.Fatal(err)
	}
	if err := s.ChooseDelivery(ctx, es.NewID(), user, d); err != nil {
		t.Fatal(err)
	}
	placed, err := s.Checkout(ctx, es.NewID(), user)
	if err != nil {
		t.Fatal(err)
	}
	return placed[concertID]
}

func waitOrder(t *testing.T, a *app.App, id string, done func(orders.Order) bool) orders.Order {
	t.Helper()
	var o orders.Order
	waitFor(t, func() bool {
		var err error
		o, err = a.Order(context.Background(), id)
		if err != nil && !errors.Is(err, orders.ErrNoOrder) {
			t.Fatal(err)
		}
		return err == nil && done(o)
	})
	return o
}

func status(st orders.Status) func(orders.Order) bool {
	return func(o orders.Order) bool { return o.Status == st }
}

func (s *shop) inventory(t *testing.T, concertID string) reservations.Inventory {
	t.Helper()
	inv, _, err := s.Inventory.Load(context.Background(), reservations.Stream(concertID))
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// ledger returns what a payment captured and refunded.
func (s *shop) ledger(t *testing.T, paymentID string) (charged, refunded int64) {
	t.Helper()
	charged, refunded, err := s.payments.Ledger(context.Background(), paymentID)
	if err != nil {
		t.Fatal(err)
	}
	return charged, refunded
}

func TestAPurchaseRunsFromCheckoutToTicketsDeliveredTheWayTheBuyerChose(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, standin.Config{})
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	courier := carts.Delivery{Method: carts.ByCourier, Address: &carts.PostalAddress{
		Name: "Ala Nowak", Street: "Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}}
	id := s.buy(t, "ala", "c1", 3, courier)
	o := waitOrder(t, s.App, id, status(orders.Completed))
	if len(o.TicketIDs) != 3 {
		t.Errorf("%d tickets, want 3", len(o.TicketIDs))
	}
	inv := s.inventory(t, "c1")
	if r := inv.Reservations[o.ReservationID]; r.Status != reservations.Confirmed || inv.Left("GA") != 7 {
		t.Errorf("reservation %s, %d left; want confirmed and 7", r.Status, inv.Left("GA"))
	}
	if charged, refunded := s.ledger(t, o.PaymentID); charged != 75000 || refunded != 0 {
		t.Errorf("charged %d, refunded %d; want 75000 and 0", charged, refunded)
	}
	// The delivery chosen in the cart reached tickets.IssueTickets.
	evs, err := es.Collect(s.store.ReadStream(ctx, standin.TicketStream(id), es.StreamQuery{}))
	if err != nil || len(evs) != 1 {
		t.Fatalf("%d ticket events, %v", len(evs), err)
	}
	reg := es.NewRegistry()
	_ = standin.Register(reg)
	issued, _ := reg.Decode(evs[0])
	if d := issued.(standin.Issued).Delivery; d.Method != tickets.ByCourier || d.Address == nil || d.Address.City != "Warszawa" {
		t.Errorf("delivery %+v, want the courier to Warszawa", d)
	}
	if err := s.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	uo, err := orders.UserOrders(ctx, s.store.DB(), "ala")
	if err != nil || len(uo) != 1 || uo[0].Status != orders.Completed {
		t.Errorf("user orders %+v, %v; want one, completed", uo, err)
	}
}

func TestAnOrderWithoutSeatsIsRejectedWithoutChargeAndTheBuyerCanRetry(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, standin.Config{})
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 3)); err != nil {
		t.Fatal(err)
	}
	waitOrder(t, s.App, s.buy(t, "ala", "c1", 2, byEmail), status(orders.Completed))
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.Rejected))
	if o.Reason != "no seats: sold out" {
		t.Errorf("reason %q", o.Reason)
	}
	if charged, _ := s.ledger(t, o.PaymentID); charged != 0 {
		t.Errorf("charged %d for a rejected order", charged)
	}
	// The cart is back, with its lines and its delivery choice.
	waitFor(t, func() bool {
		c, _, err := s.Carts.Load(ctx, carts.Stream("ola"))
		return err == nil && c.Open && len(c.Lines) == 1 && c.Lines[0].Quantity == 2 && c.Delivery != nil
	})
	if _, err := s.Carts.Handle(ctx, es.NewID(), carts.Stream("ola"), carts.ChangeQuantity{UserID: "ola", ConcertID: "c1", TicketType: "GA", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	again, err := s.Checkout(ctx, es.NewID(), "ola")
	if err != nil {
		t.Fatal(err)
	}
	waitOrder(t, s.App, again["c1"], status(orders.Completed))
	if left := s.inventory(t, "c1").Left("GA"); left != 0 {
		t.Errorf("%d left, want 0", left)
	}
	if err := s.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := carts.Contents(ctx, s.store.DB(), "ola"); err != nil || len(c) != 0 {
		t.Errorf("ola's cart %+v, %v; want empty after the second checkout", c, err)
	}
}

func TestADeclinedPaymentReleasesTheSeatsAndTellsTheBuyerWhy(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, standin.Config{Decline: func(p finance.RequestPayment) (string, bool) {
		return "card declined", p.UserID == "ola"
	}})
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	o := waitOrder(t, s.App, s.buy(t, "ola", "c1", 4, byEmail), status(orders.Cancelled))
	if o.Reason != "payment failed: card declined" {
		t.Errorf("reason %q", o.Reason)
	}
	waitFor(t, func() bool { return s.inventory(t, "c1").Left("GA") == 10 })
	if r := s.inventory(t, "c1").Reservations[o.ReservationID]; r.Status != reservations.Cancelled {
		t.Errorf("reservation %s, want cancelled", r.Status)
	}
	if charged, _ := s.ledger(t, o.PaymentID); charged != 0 {
		t.Errorf("charged %d for a declined payment", charged)
	}
	if err := s.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	uo, err := orders.UserOrders(ctx, s.store.DB(), "ola")
	if err != nil || len(uo) != 1 || uo[0].Reason != "payment failed: card declined" {
		t.Errorf("user orders %+v, %v; want the reason", uo, err)
	}
}

// pendingFor leaves the payments of user pending until Complete.
func pendingFor(user string) standin.Config {
	return standin.Config{Pending: func(p finance.RequestPayment) bool { return p.UserID == user }}
}

func TestAnUnpaidOrderIsCancelledAfterTheHoldAndALatePaymentIsRefunded(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, pendingFor("ola"))
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.AwaitingPayment))
	s.clock.Advance(testHold + testGrace)
	o = waitOrder(t, s.App, id, status(orders.Cancelled))
	if o.Reason != "the payment was not completed before the seats' hold ran out" {
		t.Errorf("reason %q", o.Reason)
	}
	waitFor(t, func() bool { return s.inventory(t, "c1").Left("GA") == 10 })
	// The bank answers at last: the money goes back.
	if err := s.payments.Complete(ctx, o.PaymentID); err != nil {
		t.Fatal(err)
	}
	o = waitOrder(t, s.App, id, func(o orders.Order) bool { return o.RefundsDone == 1 })
	if charged, refunded := s.ledger(t, o.PaymentID); charged != 50000 || refunded != 50000 {
		t.Errorf("charged %d, refunded %d; want both 50000", charged, refunded)
	}
}

// lapse has the order's payment captured after its hold ran out and the
// expiry process released its seats; before, take may take seats.
func lapse(t *testing.T, s *shop, take func()) orders.Order {
	t.Helper()
	ctx := context.Background()
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 2)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.AwaitingPayment))
	s.clock.Advance(testHold + time.Second) // within the grace
	waitFor(t, func() bool { return s.inventory(t, "c1").Reservations[o.ReservationID].Status == reservations.Expired })
	take()
	if err := s.payments.Complete(ctx, o.PaymentID); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestAPaymentAfterTheHoldLapsedHoldsTheSeatsAgain(t *testing.T) {
	s := newShop(t, pendingFor("ola"))
	o := lapse(t, s, func() {})
	done := waitOrder(t, s.App, o.ID, status(orders.Completed))
	if done.ReservationID == o.ReservationID {
		t.Fatal("completed on the lapsed reservation")
	}
	inv := s.inventory(t, "c1")
	if inv.Reservations[done.ReservationID].Status != reservations.Confirmed || inv.Left("GA") != 0 {
		t.Errorf("second reservation %s, %d left; want confirmed and 0", inv.Reservations[done.ReservationID].Status, inv.Left("GA"))
	}
	if charged, refunded := s.ledger(t, o.PaymentID); charged != 50000 || refunded != 0 {
		t.Errorf("charged %d, refunded %d", charged, refunded)
	}
}

func TestAPaymentAfterTheHoldLapsedIsRefundedWhenTheSeatsAreGone(t *testing.T) {
	s := newShop(t, pendingFor("ola"))
	o := lapse(t, s, func() {
		if err := s.Reserve(context.Background(), "someone-else", reservations.Reserve{ConcertID: "c1", ReservationID: "someone-else",
			UserID: "ala", Seats: map[string]int{"GA": 2}}); err != nil {
			t.Fatal(err)
		}
	})
	done := waitOrder(t, s.App, o.ID, func(o orders.Order) bool { return o.Status == orders.Cancelled && o.RefundsDone == 1 })
	if done.Reason != "the seats were released before the payment arrived and are sold out: sold out" {
		t.Errorf("reason %q", done.Reason)
	}
	if charged, refunded := s.ledger(t, o.PaymentID); charged != 50000 || refunded != 50000 {
		t.Errorf("charged %d, refunded %d; want both 50000", charged, refunded)
	}
}

func TestACancelledConcertRefundsEveryPaidOrderAndVoidsItsTickets(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, pendingFor("ela"))
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	paid := []string{s.buy(t, "ala", "c1", 2, byEmail), s.buy(t, "ola", "c1", 1, byEmail)}
	for _, id := range paid {
		waitOrder(t, s.App, id, status(orders.Completed))
	}
	unpaid := s.buy(t, "ela", "c1", 3, byEmail)
	waitOrder(t, s.App, unpaid, status(orders.AwaitingPayment))
	if err := s.CancelConcert(ctx, es.NewID(), concerts.CancelConcert{ConcertID: "c1", Reason: "storm"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range paid {
		o := waitOrder(t, s.App, id, func(o orders.Order) bool { return o.RefundsDone == 1 })
		if o.Status != orders.Cancelled || o.Reason != "the concert was cancelled: storm" {
			t.Errorf("order %s: %s, %q", id, o.Status, o.Reason)
		}
		if charged, refunded := s.ledger(t, o.PaymentID); charged == 0 || charged != refunded {
			t.Errorf("order %s: charged %d, refunded %d", id, charged, refunded)
		}
		waitFor(t, func() bool {
			n, err := es.Collect(s.store.ReadStream(ctx, standin.TicketStream(id), es.StreamQuery{}))
			return err == nil && len(n) == 2 // issued, then voided
		})
	}
	o := waitOrder(t, s.App, unpaid, status(orders.Cancelled))
	waitFor(t, func() bool {
		return s.inventory(t, "c1").Reservations[o.ReservationID].Status == reservations.Cancelled
	})
	// An order placed as the concert was cancelled gets no seats.
	if err := s.AddToCart(ctx, es.NewID(), "ula", "c1", "GA", 1); !errors.Is(err, concerts.ErrConcertCancelled) {
		t.Errorf("adding a cancelled concert to a cart: %v", err)
	}
}

func TestTheBuyerCancelsAnUnpaidOrderButNotAPaidOne(t *testing.T) {
	ctx := context.Background()
	s := newShop(t, pendingFor("ola"))
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	paid := s.buy(t, "ala", "c1", 1, byEmail)
	waitOrder(t, s.App, paid, status(orders.Completed))
	if err := s.CancelOrder(ctx, es.NewID(), "ala", paid, "changed my mind"); !errors.Is(err, orders.ErrTooLateToCancel) {
		t.Errorf("cancelling a paid order: %v", err)
	}
	unpaid := s.buy(t, "ola", "c1", 2, byEmail)
	waitOrder(t, s.App, unpaid, status(orders.AwaitingPayment))
	if err := s.CancelOrder(ctx, es.NewID(), "ala", unpaid, "not mine"); !errors.Is(err, orders.ErrNoOrder) {
		t.Errorf("cancelling someone else's order: %v", err)
	}
	if err := s.CancelOrder(ctx, es.NewID(), "ola", unpaid, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.inventory(t, "c1").Left("GA") == 9 })
}
