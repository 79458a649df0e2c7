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
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// The end-to-end tests of the purchase run the app on a SQLite file with
// the real finance and tickets modules: payments go through the finance
// module's fake gateway (told to decline or leave pending the charges of
// chosen buyers), tickets are mailed as .eml files into a test folder or
// handed to the fake courier. What they check of money and tickets they
// read from those modules' streams.

const (
	testHold = 10 * time.Minute
	// testGrace keeps the order's payment deadline (hold + grace) before
	// the finance module's own (its PaymentTimeout, 15 minutes): a bank
	// that answers after the order gave up is then refunded by the order.
	testGrace = 2 * time.Minute
)

type shop struct {
	*app.App
	store   *sqlite.Store
	clock   *estest.FakeClock
	gateway *finance.FakeGateway
	mail    string // the folder tickets are mailed to
}

// newShop runs the app; each of with may change its configuration.
func newShop(t *testing.T, with ...func(*app.Config)) *shop {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ticketing.db"), sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	mail := t.TempDir()
	folder, err := mailer.NewFolder(mail, "tickets@ticketing.example")
	if err != nil {
		t.Fatal(err)
	}
	gateway := finance.NewFakeGateway()
	clock := estest.NewFakeClock(start)
	cfg := app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Clock: clock, Hold: testHold, PaymentGrace: testGrace,
		RelayPollInterval: 5 * time.Millisecond, Payments: gateway, Mailer: folder}
	for _, w := range with {
		w(&cfg)
	}
	a, err := app.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run(t, a)
	return &shop{App: a, store: store, clock: clock, gateway: gateway, mail: mail}
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
	inv, err := s.Inventory(context.Background(), concertID)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func (s *shop) reservation(t *testing.T, reservationID string) reservations.Reservation {
	t.Helper()
	r, err := s.Reservation(context.Background(), reservationID)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// ledger returns what an order's payment captured and what was given
// back of it, from the finance module's payment stream.
func (s *shop) ledger(t *testing.T, orderID string) (captured, refunded int64) {
	t.Helper()
	for e, err := range s.store.ReadStream(context.Background(), finance.PaymentStream(orderID), es.StreamQuery{}) {
		if err != nil {
			if errors.Is(err, es.ErrStreamNotFound) {
				return 0, 0
			}
			t.Fatal(err)
		}
		v, err := s.Registry().Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case finance.PaymentCaptured:
			captured += v.Amount.Amount
		case finance.LateCaptureDetected:
			captured += v.Amount.Amount
		case finance.RefundCompleted:
			refunded += v.Amount.Amount
		case finance.CaptureReversed:
			refunded += v.Amount.Amount
		}
	}
	return captured, refunded
}

// complete reports, as the gateway's webhook would, that the bank captured
// the pending payment of order o at last.
func (s *shop) complete(t *testing.T, o orders.Order) {
	t.Helper()
	if err := s.Finance.Record(context.Background(), es.DeriveID("test/webhook/"+o.PaymentID, 0), o.ID,
		finance.RecordCapture{GatewayID: finance.FakeGatewayID(o.PaymentID), Amount: o.Total, At: s.clock.Now()}); err != nil {
		t.Fatal(err)
	}
}

// events returns the decoded events of a stream.
func (s *shop) events(t *testing.T, stream string) []any {
	t.Helper()
	var out []any
	for e, err := range s.store.ReadStream(context.Background(), stream, es.StreamQuery{}) {
		if errors.Is(err, es.ErrStreamNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Registry().Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// mails returns the .eml files in the mail folder.
func (s *shop) mails(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.mail, "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestAPurchaseRunsFromCheckoutToTicketsDeliveredTheWayTheBuyerChose(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	courier := carts.Delivery{Method: carts.ByCourier, Address: &carts.PostalAddress{
		Name: "Ala Nowak", Street: "Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}}
	id := s.buy(t, "ala", "c1", 3, courier)
	mailed := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.Completed))
	if len(o.TicketIDs) != 3 {
		t.Errorf("%d tickets, want 3", len(o.TicketIDs))
	}
	if r := s.reservation(t, o.ReservationID); r.Status != reservations.Confirmed {
		t.Errorf("reservation %s, want confirmed", r.Status)
	}
	if captured, refunded := s.ledger(t, id); captured != 75000 || refunded != 0 {
		t.Errorf("captured %d, refunded %d; want 75000 and 0", captured, refunded)
	}
	// The payment named the concert's organizer, who is invoiced.
	p, err := s.Finance.Payment(ctx, id)
	if err != nil || p.OrganizerID != "organizer-1" || p.Amount.Amount != 75000 {
		t.Errorf("payment %+v, %v; want 75000 for organizer-1", p, err)
	}
	// Each ticket exists in the tickets module, and the delivery chosen
	// in the cart reached it through tickets.IssueTickets.
	for _, tid := range o.TicketIDs {
		if evs := s.events(t, tickets.TicketStream(tid)); len(evs) != 1 {
			t.Errorf("ticket %s: %d events, want its issue", tid, len(evs))
		}
		evs := s.events(t, tickets.DeliveryStream(tid))
		req, ok := first[tickets.DeliveryRequested](evs)
		if d := req.Delivery; !ok || d.Method != tickets.ByCourier || d.Address == nil || d.Address.City != "Warszawa" {
			t.Errorf("ticket %s: delivery %+v, want the courier to Warszawa", tid, d)
		}
	}
	// Ola's two tickets are mailed as .eml files.
	m := waitOrder(t, s.App, mailed, status(orders.Completed))
	waitFor(t, func() bool { return len(s.mails(t)) == 2 })
	for _, tid := range m.TicketIDs {
		evs := s.events(t, tickets.DeliveryStream(tid))
		if req, ok := first[tickets.DeliveryRequested](evs); !ok || req.Delivery.Email != byEmail.Email {
			t.Errorf("ticket %s: delivery %+v, want e-mail to %s", tid, req.Delivery, byEmail.Email)
		}
	}
	if left := s.inventory(t, "c1").Left("GA"); left != 5 {
		t.Errorf("%d left, want 5", left)
	}
	if err := s.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	uo, err := orders.UserOrders(ctx, s.store.DB(), "ala")
	if err != nil || len(uo) != 1 || uo[0].Status != orders.Completed {
		t.Errorf("user orders %+v, %v; want one, completed", uo, err)
	}
}

// first returns the first event of type E in evs.
func first[E any](evs []any) (E, bool) {
	for _, e := range evs {
		if e, ok := e.(E); ok {
			return e, true
		}
	}
	var zero E
	return zero, false
}

func TestAnOrderWithoutSeatsIsRejectedWithoutChargeAndTheBuyerCanRetry(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 3)); err != nil {
		t.Fatal(err)
	}
	waitOrder(t, s.App, s.buy(t, "ala", "c1", 2, byEmail), status(orders.Completed))
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.Rejected))
	if o.Reason != "no seats: sold out" {
		t.Errorf("reason %q", o.Reason)
	}
	if evs := s.events(t, finance.PaymentStream(id)); len(evs) != 0 {
		t.Errorf("a rejected order's payment: %v, want none", evs)
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
	if captured, _ := s.ledger(t, again["c1"]); captured != 25000 {
		t.Errorf("captured %d for the second order, want 25000", captured)
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
	s := newShop(t)
	s.gateway.DeclineUser("ola", "card_declined")
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ola", "c1", 4, byEmail)
	o := waitOrder(t, s.App, id, status(orders.Cancelled))
	const reason = "payment failed: your card was declined"
	if o.Reason != reason {
		t.Errorf("reason %q", o.Reason)
	}
	waitFor(t, func() bool { return s.inventory(t, "c1").Left("GA") == 10 })
	if r := s.reservation(t, o.ReservationID); r.Status != reservations.Cancelled {
		t.Errorf("reservation %s, want cancelled", r.Status)
	}
	if captured, _ := s.ledger(t, id); captured != 0 {
		t.Errorf("captured %d for a declined payment", captured)
	}
	if _, ok := first[finance.PaymentDeclined](s.events(t, finance.PaymentStream(id))); !ok {
		t.Error("finance recorded no decline")
	}
	if err := s.WaitForReadModels(ctx); err != nil {
		t.Fatal(err)
	}
	uo, err := orders.UserOrders(ctx, s.store.DB(), "ola")
	if err != nil || len(uo) != 1 || uo[0].Reason != reason {
		t.Errorf("user orders %+v, %v; want the reason", uo, err)
	}
}

func TestAnUnpaidOrderIsCancelledAfterTheHoldAndALatePaymentIsRefunded(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	s.gateway.PendUser("ola")
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.AwaitingPayment))
	waitFor(t, func() bool {
		_, ok := first[finance.PaymentRequested](s.events(t, finance.PaymentStream(id)))
		return ok
	})
	s.clock.Advance(testHold + testGrace)
	o = waitOrder(t, s.App, id, status(orders.Cancelled))
	if o.Reason != "the payment was not completed before the seats' hold ran out" {
		t.Errorf("reason %q", o.Reason)
	}
	waitFor(t, func() bool { return s.inventory(t, "c1").Left("GA") == 10 })
	// The bank answers at last: the money goes back.
	s.complete(t, o)
	o = waitOrder(t, s.App, id, func(o orders.Order) bool { return o.RefundsDone == 1 })
	if captured, refunded := s.ledger(t, id); captured != 50000 || refunded != 50000 {
		t.Errorf("captured %d, refunded %d; want both 50000", captured, refunded)
	}
}

// lapse has the order's payment captured after its hold ran out and the
// expiry process released its seats; before, take may take seats.
func lapse(t *testing.T, s *shop, take func()) orders.Order {
	t.Helper()
	ctx := context.Background()
	s.gateway.PendUser("ola")
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 2)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.AwaitingPayment))
	waitFor(t, func() bool {
		_, ok := first[finance.PaymentRequested](s.events(t, finance.PaymentStream(id)))
		return ok
	})
	s.clock.Advance(testHold + time.Second) // within the grace
	waitFor(t, func() bool { return s.reservation(t, o.ReservationID).Status == reservations.Expired })
	take()
	s.complete(t, o)
	return o
}

func TestAPaymentAfterTheHoldLapsedHoldsTheSeatsAgain(t *testing.T) {
	s := newShop(t)
	o := lapse(t, s, func() {})
	done := waitOrder(t, s.App, o.ID, status(orders.Completed))
	if done.ReservationID == o.ReservationID {
		t.Fatal("completed on the lapsed reservation")
	}
	inv, second := s.inventory(t, "c1"), s.reservation(t, done.ReservationID)
	if second.Status != reservations.Confirmed || inv.Left("GA") != 0 {
		t.Errorf("second reservation %s, %d left; want confirmed and 0", second.Status, inv.Left("GA"))
	}
	if captured, refunded := s.ledger(t, o.ID); captured != 50000 || refunded != 0 {
		t.Errorf("captured %d, refunded %d", captured, refunded)
	}
	if len(done.TicketIDs) != 2 {
		t.Errorf("%d tickets, want 2", len(done.TicketIDs))
	}
}

func TestAPaymentAfterTheHoldLapsedIsRefundedWhenTheSeatsAreGone(t *testing.T) {
	s := newShop(t)
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
	if captured, refunded := s.ledger(t, o.ID); captured != 50000 || refunded != 50000 {
		t.Errorf("captured %d, refunded %d; want both 50000", captured, refunded)
	}
}

func TestACancelledConcertRefundsEveryPaidOrderAndVoidsItsTickets(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	s.gateway.PendUser("ela")
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
		if captured, refunded := s.ledger(t, id); captured == 0 || captured != refunded {
			t.Errorf("order %s: captured %d, refunded %d", id, captured, refunded)
		}
		waitFor(t, func() bool {
			_, ok := first[tickets.OrderTicketsVoided](s.events(t, tickets.OrderStream(id)))
			return ok
		})
		for _, tid := range o.TicketIDs {
			if _, ok := first[tickets.TicketVoided](s.events(t, tickets.TicketStream(tid))); !ok {
				t.Errorf("ticket %s of order %s is not void", tid, id)
			}
		}
	}
	o := waitOrder(t, s.App, unpaid, status(orders.Cancelled))
	waitFor(t, func() bool {
		return s.reservation(t, o.ReservationID).Status == reservations.Cancelled
	})
	if captured, _ := s.ledger(t, unpaid); captured != 0 {
		t.Errorf("captured %d for the unpaid order", captured)
	}
	// An order placed as the concert was cancelled gets no seats.
	if err := s.AddToCart(ctx, es.NewID(), "ula", "c1", "GA", 1); !errors.Is(err, concerts.ErrConcertCancelled) {
		t.Errorf("adding a cancelled concert to a cart: %v", err)
	}
}

func TestTheBuyerCancelsAnUnpaidOrderButNotAPaidOne(t *testing.T) {
	ctx := context.Background()
	s := newShop(t)
	s.gateway.PendUser("ola")
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

func TestATicketThatCannotBeDeliveredIsToldToTheOrder(t *testing.T) {
	ctx := context.Background()
	bounce := tickets.MailerFunc(func(context.Context, tickets.Mail) (string, error) {
		return "", &tickets.PermanentError{Err: errors.New("no such mailbox")}
	})
	s := newShop(t, func(c *app.Config) { c.Mailer = bounce })
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ala", "c1", 2, byEmail)
	// The order is complete (the tickets exist and can be resent), and it
	// hears of each ticket that could not be delivered.
	o := waitOrder(t, s.App, id, func(o orders.Order) bool { return o.Status == orders.Completed && o.DeliveryFailures == 2 })
	if len(o.TicketIDs) != 2 {
		t.Errorf("%d tickets, want 2", len(o.TicketIDs))
	}
	if captured, refunded := s.ledger(t, id); captured != 50000 || refunded != 0 {
		t.Errorf("captured %d, refunded %d; want 50000 and 0", captured, refunded)
	}
}

func TestWhenFinanceGivesUpOnTheBankFirstTheOrderIsCancelledAndALateCaptureReversed(t *testing.T) {
	ctx := context.Background()
	// A hold longer than finance's 15 minutes of waiting for the gateway.
	s := newShop(t, func(c *app.Config) { c.Hold = time.Hour })
	s.gateway.PendUser("ola")
	if err := s.CreateConcert(ctx, es.NewID(), concert("c1", 10)); err != nil {
		t.Fatal(err)
	}
	id := s.buy(t, "ola", "c1", 2, byEmail)
	o := waitOrder(t, s.App, id, status(orders.AwaitingPayment))
	waitFor(t, func() bool {
		_, ok := first[finance.PaymentRequested](s.events(t, finance.PaymentStream(id)))
		return ok
	})
	s.clock.Advance(15 * time.Minute)
	o = waitOrder(t, s.App, id, status(orders.Cancelled))
	if o.Reason != "payment failed: the payment provider did not answer in time; nothing was charged" {
		t.Errorf("reason %q", o.Reason)
	}
	waitFor(t, func() bool { return s.inventory(t, "c1").Left("GA") == 10 })
	// The bank answers at last: finance gives the money back itself.
	s.complete(t, o)
	waitFor(t, func() bool { captured, refunded := s.ledger(t, id); return captured == 50000 && refunded == 50000 })
}
