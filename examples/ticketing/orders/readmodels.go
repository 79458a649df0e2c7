package orders

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/tickets"
)

// UserOrder is one line of the user orders read model.
type UserOrder struct {
	OrderID     string
	ConcertID   string
	ConcertName string
	Tickets     int
	Total       money.Money
	Status      Status
	// Reason says why the order was rejected or cancelled.
	Reason string
}

// statusUpdate is the status an event of an order sets, with the status it
// must find ("" for any), and the reason it gives.
func statusUpdate(v any) (id string, to, from Status, reason string, ok bool) {
	switch e := v.(type) {
	case OrderSeatsHeld:
		// A hold after the first (once paid) leaves the order paid.
		return e.OrderID, AwaitingPayment, Placed, "", true
	case OrderRejected:
		return e.OrderID, Rejected, "", e.Reason, true
	case PaymentCaptured:
		return e.OrderID, Paid, "", "", true
	case OrderSeatsConfirmed:
		return e.OrderID, Confirmed, "", "", true
	case OrderCompleted:
		return e.OrderID, Completed, "", "", true
	case OrderCancelled:
		return e.OrderID, Cancelled, "", e.Reason, true
	}
	return "", "", "", "", false
}

// setStatus applies an event's status change to table, keyed by order_id.
func setStatus(ctx context.Context, tx sqlprojection.Tx, table string, v any) error {
	id, to, from, reason, ok := statusUpdate(v)
	if !ok {
		return nil
	}
	q := `UPDATE ` + table + ` SET status = $1, reason = $2 WHERE order_id = $3`
	args := []any{to, reason, id}
	if from != "" {
		q += ` AND status = $4`
		args = append(args, from)
	}
	_, err := tx.Exec(ctx, q, args...)
	return err
}

func countTickets(lines []Line) int {
	n := 0
	for _, l := range lines {
		n += l.Quantity
	}
	return n
}

func concertName(lines []Line) string {
	if len(lines) == 0 {
		return ""
	}
	return lines[0].ConcertName
}

// UserOrdersProjection keeps each user's orders in the table user_orders:
// the workshop design's UserOrders, with the reason of a rejection or
// cancellation, which tells the buyer why. Each event sets a row to what
// it says, so redelivery changes nothing. Its SQL is portable: the same
// projection runs on SQLite and PostgreSQL.
func UserOrdersProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "user-orders",
		Tables: []string{"user_orders"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("user_orders")+` (
				order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, concert_id TEXT NOT NULL, concert_name TEXT NOT NULL,
				tickets INTEGER NOT NULL, total BIGINT NOT NULL, currency TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("user_orders", "by_user")+` ON `+t.Name("user_orders")+` (user_id)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			table := t.Name("user_orders")
			if p, ok := v.(OrderPlaced); ok {
				_, err := tx.Exec(ctx, `INSERT INTO `+table+` (order_id, user_id, concert_id, concert_name, tickets, total, currency, status, reason)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '')
					ON CONFLICT (order_id) DO UPDATE SET user_id = excluded.user_id, concert_id = excluded.concert_id,
						concert_name = excluded.concert_name, tickets = excluded.tickets, total = excluded.total,
						currency = excluded.currency, status = excluded.status, reason = excluded.reason`,
					p.OrderID, p.UserID, p.ConcertID, concertName(p.Lines), countTickets(p.Lines), p.Total.Amount, p.Total.Currency, Placed)
				return err
			}
			return setStatus(ctx, tx, table, v)
		},
	}
}

// UserOrders returns a user's orders, by order ID.
func UserOrders(ctx context.Context, db *sql.DB, userID string) ([]UserOrder, error) {
	rows, err := db.QueryContext(ctx, `SELECT order_id, concert_id, concert_name, tickets, total, currency, status, reason
		FROM user_orders WHERE user_id = $1 ORDER BY order_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("user orders: %w", err)
	}
	defer rows.Close()
	var out []UserOrder
	for rows.Next() {
		var o UserOrder
		if err := rows.Scan(&o.OrderID, &o.ConcertID, &o.ConcertName, &o.Tickets, &o.Total.Amount, &o.Total.Currency, &o.Status, &o.Reason); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Details is the order details read model of one order.
type Details struct {
	OrderID   string
	UserID    string
	ConcertID string
	Lines     []Line
	Total     money.Money
	Delivery  tickets.Delivery
	Status    Status
	Reason    string
	TicketIDs []string
	// Refunded is the money given back.
	Refunded money.Money
}

// DetailsProjection keeps each order's details in the table
// order_details: the workshop design's OrderDetails, with the delivery
// choice, the tickets issued and the money refunded. Its SQL is portable.
func DetailsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "order-details",
		Tables: []string{"order_details"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("order_details")+` (
				order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, concert_id TEXT NOT NULL, lines TEXT NOT NULL,
				total BIGINT NOT NULL, currency TEXT NOT NULL, delivery TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
				tickets TEXT NOT NULL, refunded BIGINT NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			table := t.Name("order_details")
			switch ev := v.(type) {
			case OrderPlaced:
				lines, _ := json.Marshal(ev.Lines)
				delivery, _ := json.Marshal(ev.Delivery)
				_, err = tx.Exec(ctx, `INSERT INTO `+table+` (order_id, user_id, concert_id, lines, total, currency, delivery,
						status, reason, tickets, refunded)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '', '[]', 0)
					ON CONFLICT (order_id) DO UPDATE SET user_id = excluded.user_id, concert_id = excluded.concert_id,
						lines = excluded.lines, total = excluded.total, currency = excluded.currency, delivery = excluded.delivery,
						status = excluded.status, reason = excluded.reason, tickets = excluded.tickets, refunded = excluded.refunded`,
					ev.OrderID, ev.UserID, ev.ConcertID, string(lines), ev.Total.Amount, ev.Total.Currency, string(delivery), Placed)
				return err
			case OrderCompleted:
				ids, _ := json.Marshal(ev.TicketIDs)
				if _, err := tx.Exec(ctx, `UPDATE `+table+` SET tickets = $1 WHERE order_id = $2`, string(ids), ev.OrderID); err != nil {
					return err
				}
			case RefundCompleted:
				// One refund per order: set, not added, so redelivery is harmless.
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET refunded = $1 WHERE order_id = $2`, ev.Amount.Amount, ev.OrderID)
				return err
			}
			return setStatus(ctx, tx, table, v)
		},
	}
}

// DetailsOf returns the details of an order; sql.ErrNoRows if there is no
// such order.
func DetailsOf(ctx context.Context, db *sql.DB, orderID string) (Details, error) {
	d := Details{OrderID: orderID}
	var lines, delivery, ids string
	err := db.QueryRowContext(ctx, `SELECT user_id, concert_id, lines, total, currency, delivery, status, reason, tickets,
			refunded FROM order_details WHERE order_id = $1`, orderID).
		Scan(&d.UserID, &d.ConcertID, &lines, &d.Total.Amount, &d.Total.Currency, &delivery, &d.Status, &d.Reason, &ids,
			&d.Refunded.Amount)
	if err != nil {
		return d, err
	}
	d.Refunded.Currency = d.Total.Currency
	if err := json.Unmarshal([]byte(lines), &d.Lines); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(delivery), &d.Delivery); err != nil {
		return d, err
	}
	return d, json.Unmarshal([]byte(ids), &d.TicketIDs)
}
