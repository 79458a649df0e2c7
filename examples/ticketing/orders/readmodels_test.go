package orders_test

import (
	"context"
	"database/sql"
	"testing"

	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/examples/ticketing/orders"
)

func placed(id string) orders.OrderPlaced {
	return orders.OrderPlaced{OrderID: id, UserID: "u1", CartNo: 1, ConcertID: "c1", OrganizerID: "org1", Lines: lines, Total: total,
		Delivery: delivery, PaymentID: orders.PaymentID(id), ReservationID: orders.ReservationID(id, 0)}
}

// purchases: o1 completes, o2 is rejected, o3 is declined, o4 is paid after
// its hold lapsed and held again, o5 completes and is refunded with its
// concert.
func purchases() []any {
	return []any{
		estest.InStream("order-o1", placed("o1"), orders.OrderSeatsHeld{OrderID: "o1", ExpiresAt: specStart},
			orders.PaymentCaptured{OrderID: "o1", Amount: total}, orders.OrderSeatsConfirmed{OrderID: "o1"},
			orders.OrderCompleted{OrderID: "o1", TicketIDs: []string{"t1", "t2", "t3"}}),
		estest.InStream("order-o2", placed("o2"), orders.OrderRejected{OrderID: "o2", Reason: "no seats: sold out"}),
		estest.InStream("order-o3", placed("o3"), orders.OrderSeatsHeld{OrderID: "o3", ExpiresAt: specStart},
			orders.OrderCancelled{OrderID: "o3", Reason: "payment failed: card declined", Release: "r3"}),
		estest.InStream("order-o4", placed("o4"), orders.OrderSeatsHeld{OrderID: "o4", ExpiresAt: specStart},
			orders.PaymentCaptured{OrderID: "o4", Amount: total}, orders.HoldLapsed{OrderID: "o4"},
			orders.OrderSeatsHeld{OrderID: "o4", ExpiresAt: specStart}),
		estest.InStream("order-o5", placed("o5"), orders.OrderSeatsHeld{OrderID: "o5", ExpiresAt: specStart},
			orders.PaymentCaptured{OrderID: "o5", Amount: total}, orders.OrderSeatsConfirmed{OrderID: "o5"},
			orders.OrderCompleted{OrderID: "o5", TicketIDs: []string{"t4"}},
			orders.OrderCancelled{OrderID: "o5", Reason: "the concert was cancelled", ConcertCancelled: true,
				Refund: &orders.Refund{Amount: total}, VoidTickets: true},
			orders.RefundCompleted{OrderID: "o5", Amount: total}),
	}
}

func TestUserOrdersShowEachOrdersStatusAndWhyItFailed(t *testing.T) {
	reg := mustRegistry()
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(orders.UserOrdersProjection(reg)), func(ctx context.Context, db *sql.DB) ([]orders.UserOrder, error) {
		return orders.UserOrders(ctx, db, "u1")
	})
	row := func(id string, st orders.Status, reason string) orders.UserOrder {
		return orders.UserOrder{OrderID: id, ConcertID: "c1", ConcertName: "Summer Night", Tickets: 3, Total: total, Status: st, Reason: reason}
	}
	estest.Projection(t, reg, rm).Given(purchases()...).Redelivered().AppliedTwice().
		Then([]orders.UserOrder{
			row("o1", orders.Completed, ""),
			row("o2", orders.Rejected, "no seats: sold out"),
			row("o3", orders.Cancelled, "payment failed: card declined"),
			row("o4", orders.Paid, ""),
			row("o5", orders.Cancelled, "the concert was cancelled"),
		})
}

func TestOrderDetailsShowLinesDeliveryTicketsAndRefunds(t *testing.T) {
	reg := mustRegistry()
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(orders.DetailsProjection(reg)), func(ctx context.Context, db *sql.DB) ([]orders.Details, error) {
		var out []orders.Details
		for _, id := range []string{"o1", "o5"} {
			d, err := orders.DetailsOf(ctx, db, id)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	})
	estest.Projection(t, reg, rm).Given(purchases()...).Redelivered().AppliedTwice().
		Then([]orders.Details{
			{OrderID: "o1", UserID: "u1", ConcertID: "c1", Lines: lines, Total: total, Delivery: delivery, Status: orders.Completed,
				TicketIDs: []string{"t1", "t2", "t3"}, Refunded: pln(0)},
			{OrderID: "o5", UserID: "u1", ConcertID: "c1", Lines: lines, Total: total, Delivery: delivery, Status: orders.Cancelled,
				Reason: "the concert was cancelled", TicketIDs: []string{"t4"}, Refunded: total},
		})
}
