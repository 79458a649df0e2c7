package tickets_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/tickets"
)

func registry(t *testing.T) *es.Registry {
	t.Helper()
	reg := es.NewRegistry()
	if err := tickets.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := tickets.RegisterMessages(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

var (
	ga1, ga2, vip1 = tickets.TicketID("o1", "GA", 1), tickets.TicketID("o1", "GA", 2), tickets.TicketID("o2", "VIP", 1)
	gate           = at.Add(2 * time.Hour)
)

func issuedAs(id, order, user, tt string, seat int) tickets.TicketIssued {
	return tickets.TicketIssued{TicketID: id, OrderID: order, UserID: user, ConcertID: "c1", TicketType: tt, Seat: seat, Code: id + ".CODE", IssuedAt: at}
}

func requestedFor(id, order string, d tickets.Delivery) tickets.DeliveryRequested {
	return tickets.DeliveryRequested{TicketID: id, OrderID: order, UserID: "ola", RequestID: "r-" + id, Delivery: d, At: at}
}

// story: ola buys two GA tickets by e-mail and a VIP ticket by courier;
// one GA ticket is used, the other's mail fails once and then goes out;
// the VIP parcel is lost, its code replaced, the order refunded.
func story() []any {
	return []any{
		estest.InStream(tickets.TicketStream(ga1), issuedAs(ga1, "o1", "ola", "GA", 1)),
		estest.InStream(tickets.DeliveryStream(ga1), requestedFor(ga1, "o1", byEmail)),
		estest.InStream(tickets.TicketStream(ga2), issuedAs(ga2, "o1", "ola", "GA", 2)),
		estest.InStream(tickets.DeliveryStream(ga2), requestedFor(ga2, "o1", byEmail)),
		estest.InStream(tickets.TicketStream(vip1), issuedAs(vip1, "o2", "ola", "VIP", 1)),
		estest.InStream(tickets.DeliveryStream(vip1), requestedFor(vip1, "o2", byCourier)),
		estest.InStream(tickets.DeliveryStream(ga1), tickets.TicketEmailed{TicketID: ga1, RequestID: "r-" + ga1, Attempt: 1, Email: byEmail.Email, Reference: "m1", At: at}),
		estest.InStream(tickets.DeliveryStream(ga2), tickets.DeliveryAttemptFailed{TicketID: ga2, RequestID: "r-" + ga2, Attempt: 1, Reason: "503", RetryAt: at.Add(time.Minute), At: at}),
		estest.InStream(tickets.DeliveryStream(vip1), tickets.ParcelShipped{TicketID: vip1, RequestID: "r-" + vip1, Attempt: 1, Tracking: "FC1", At: at}),
		estest.InStream(tickets.DeliveryStream(vip1), tickets.ParcelLost{TicketID: vip1, RequestID: "r-" + vip1, Attempt: 1, Tracking: "FC1", RetryAt: at.Add(time.Minute), At: at}),
		estest.InStream(tickets.TicketStream(vip1), tickets.TicketCodeReplaced{TicketID: vip1, Code: vip1 + ".NEW", Reason: "parcel FC1 lost", At: at}),
		estest.InStream(tickets.DeliveryStream(ga2), tickets.TicketEmailed{TicketID: ga2, RequestID: "r-" + ga2, Attempt: 2, Email: byEmail.Email, Reference: "m2", At: at.Add(time.Minute)}),
		estest.InStream(tickets.TicketStream(ga1), tickets.TicketAdmitted{TicketID: ga1, ConcertID: "c1", Gate: "north-1", At: gate}),
		estest.InStream(tickets.TicketStream(vip1), tickets.TicketVoided{TicketID: vip1, OrderID: "o2", ConcertID: "c1", Reason: "refunded", At: gate}),
		estest.InStream(tickets.DeliveryStream(vip1), tickets.DeliveryCancelled{TicketID: vip1, RequestID: "r-" + vip1, Reason: "ticket voided: refunded", At: gate}),
	}
}

func readModel[V any](t *testing.T, p func(*es.Registry) sqlprojection.Projection, view func(context.Context, *sql.DB) (V, error)) (*es.Registry, estest.ReadModel[V]) {
	t.Helper()
	reg := registry(t)
	return reg, sqlitetest.ReadModel(t, sqlite.FromPortable(p(reg)), view)
}

func TestUserTicketsShowWhatEachTicketCanDoAndItsDelivery(t *testing.T) {
	reg, rm := readModel(t, tickets.UserTicketsProjection, func(ctx context.Context, db *sql.DB) ([]tickets.UserTicket, error) {
		return tickets.UserTickets(ctx, db, "ola")
	})
	estest.Projection(t, reg, rm).Given(story()...).Redelivered().AppliedTwice().Then([]tickets.UserTicket{
		{TicketID: ga1, OrderID: "o1", ConcertID: "c1", TicketType: "GA", Seat: 1, Status: tickets.TicketUsed, Delivery: tickets.StatusEmailed},
		{TicketID: ga2, OrderID: "o1", ConcertID: "c1", TicketType: "GA", Seat: 2, Status: tickets.TicketValid, Delivery: tickets.StatusEmailed},
		{TicketID: vip1, OrderID: "o2", ConcertID: "c1", TicketType: "VIP", Seat: 1, Status: tickets.TicketVoid, Delivery: tickets.StatusCancelled},
	})
}

func TestTicketDetailsShowTheCurrentCode(t *testing.T) {
	reg, rm := readModel(t, tickets.TicketDetailsProjection, func(ctx context.Context, db *sql.DB) ([]tickets.TicketDetails, error) {
		var out []tickets.TicketDetails
		for _, id := range []string{ga1, vip1} {
			d, err := tickets.TicketDetailsOf(ctx, db, id)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	})
	estest.Projection(t, reg, rm).Given(story()...).Redelivered().AppliedTwice().Then([]tickets.TicketDetails{
		{TicketID: ga1, UserID: "ola", OrderID: "o1", ConcertID: "c1", TicketType: "GA", Seat: 1, Code: ga1 + ".CODE", IssuedAt: at,
			Status: tickets.TicketUsed, Gate: "north-1", AdmittedAt: gate},
		{TicketID: vip1, UserID: "ola", OrderID: "o2", ConcertID: "c1", TicketType: "VIP", Seat: 1, Code: vip1 + ".NEW", IssuedAt: at,
			Status: tickets.TicketVoid, VoidReason: "refunded"},
	})
}

func TestTheConcertTicketSummaryCountsTicketsByTypeAndUse(t *testing.T) {
	reg, rm := readModel(t, tickets.ConcertTicketSummaryProjection, func(ctx context.Context, db *sql.DB) (tickets.ConcertTicketSummary, error) {
		return tickets.ConcertTicketSummaryOf(ctx, db, "c1")
	})
	estest.Projection(t, reg, rm).Given(story()...).Redelivered().AppliedTwice().Then(tickets.ConcertTicketSummary{ConcertID: "c1",
		Types: []tickets.TicketTypeSummary{{TicketType: "GA", Issued: 2, Used: 1}, {TicketType: "VIP", Issued: 1, Voided: 1}}})
}

func TestTheDeliveryStatusShowsAttemptsAndRetries(t *testing.T) {
	reg, rm := readModel(t, tickets.DeliveryStatusProjection, func(ctx context.Context, db *sql.DB) ([]tickets.DeliveryStatusView, error) {
		var out []tickets.DeliveryStatusView
		for _, id := range []string{ga2, vip1} {
			d, err := tickets.DeliveryStatusOf(ctx, db, id)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	})
	estest.Projection(t, reg, rm).Given(story()...).Redelivered().AppliedTwice().Then([]tickets.DeliveryStatusView{
		{TicketID: ga2, UserID: "ola", OrderID: "o1", Method: tickets.ByEmail, Destination: "ola@example.com", Status: tickets.StatusEmailed,
			Attempt: 2, Reference: "m2", UpdatedAt: at.Add(time.Minute)},
		{TicketID: vip1, UserID: "ola", OrderID: "o2", Method: tickets.ByCourier, Destination: "Warszawa, PL", Status: tickets.StatusCancelled,
			Attempt: 2, LastError: "parcel FC1 lost", UpdatedAt: gate},
	})
}

func TestAFailedDeliveryShowsWhy(t *testing.T) {
	reg, rm := readModel(t, tickets.DeliveryStatusProjection, func(ctx context.Context, db *sql.DB) (tickets.DeliveryStatusView, error) {
		return tickets.DeliveryStatusOf(ctx, db, ga1)
	})
	estest.Projection(t, reg, rm).Given(
		estest.InStream(tickets.DeliveryStream(ga1), requestedFor(ga1, "o1", byEmail),
			tickets.DeliveryAttemptFailed{TicketID: ga1, RequestID: "r-" + ga1, Attempt: 1, Reason: "503", RetryAt: at.Add(time.Minute), At: at},
			tickets.DeliveryGaveUp{TicketID: ga1, OrderID: "o1", RequestID: "r-" + ga1, Attempts: 2, Reason: "503 again", At: at.Add(time.Minute)}),
	).Redelivered().AppliedTwice().Then(tickets.DeliveryStatusView{TicketID: ga1, UserID: "ola", OrderID: "o1", Method: tickets.ByEmail,
		Destination: "ola@example.com", Status: tickets.StatusFailed, Attempt: 2, LastError: "503 again", UpdatedAt: at.Add(time.Minute)})
}

func TestTheValidationStatusSaysWhereATicketWasUsed(t *testing.T) {
	reg, rm := readModel(t, tickets.ValidationStatusProjection, func(ctx context.Context, db *sql.DB) ([]tickets.ValidationStatus, error) {
		var out []tickets.ValidationStatus
		for _, id := range []string{ga1, ga2, vip1} {
			v, err := tickets.ValidationStatusOf(ctx, db, id)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	})
	estest.Projection(t, reg, rm).Given(story()...).Redelivered().AppliedTwice().Then([]tickets.ValidationStatus{
		{TicketID: ga1, ConcertID: "c1", Status: tickets.TicketUsed, Gate: "north-1", AdmittedAt: gate, Message: "used at gate north-1, at 2026-07-12T20:00:00Z"},
		{TicketID: ga2, ConcertID: "c1", Status: tickets.TicketValid, Message: "not used yet"},
		{TicketID: vip1, ConcertID: "c1", Status: tickets.TicketVoid, Message: "voided: refunded"},
	})
}

func TestEventSchemas(t *testing.T) {
	estest.GoldenSchema(t, registry(t), "testdata/events")
}
