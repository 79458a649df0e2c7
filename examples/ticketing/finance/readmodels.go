package finance

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/money"
)

// The read models keep amounts as BIGINT minor units beside a TEXT
// currency, and times as RFC 3339 text in UTC. Every event sets rows to
// what it says (totals come in the events, or are summed by the queries),
// so applying an event twice changes nothing. Their SQL is portable: the
// same projections run on SQLite and PostgreSQL.

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTS(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

// apply decodes e with reg and calls fn with the event, skipping types
// reg does not know.
func apply(reg *es.Registry, fn func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, v any) error) func(context.Context, sqlprojection.Tx, sqlprojection.Tables, es.Event) error {
	return func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
		v, ok, err := reg.DecodeKnown(e)
		if !ok || err != nil {
			return err
		}
		return fn(ctx, tx, t, v)
	}
}

// UserPayment is one line of the user payments read model.
type UserPayment struct {
	PaymentID   string
	OrderID     string
	Amount      money.Money
	Refunded    money.Money
	Status      PaymentStatus
	RequestedAt time.Time
}

// UserPaymentsProjection keeps each user's payments in the table
// user_payments.
func UserPaymentsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "finance-user-payments",
		Tables: []string{"user_payments"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("user_payments")+` (
				payment_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, order_id TEXT NOT NULL,
				amount BIGINT NOT NULL, currency TEXT NOT NULL, refunded BIGINT NOT NULL,
				status TEXT NOT NULL, requested_at TEXT NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("user_payments", "by_user")+` ON `+t.Name("user_payments")+` (user_id)`)
			return err
		},
		Apply: apply(reg, func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, v any) error {
			table := t.Name("user_payments")
			var err error
			switch e := v.(type) {
			case PaymentRequested:
				_, err = tx.Exec(ctx, `INSERT INTO `+table+` (payment_id, user_id, order_id, amount, currency, refunded, status, requested_at)
					VALUES ($1, $2, $3, $4, $5, 0, $6, $7) ON CONFLICT (payment_id) DO NOTHING`,
					e.PaymentID, e.UserID, e.OrderID, e.Amount.Amount, e.Amount.Currency, string(Pending), ts(e.RequestedAt))
			case PaymentCaptured:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET status = $1 WHERE payment_id = $2`, string(Succeeded), e.PaymentID)
			case PaymentDeclined:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET status = $1 WHERE payment_id = $2`, string(Failed), e.PaymentID)
			case RefundCompleted:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET refunded = $1,
					status = CASE WHEN amount = $1 THEN $2 ELSE status END WHERE payment_id = $3`,
					e.TotalRefunded.Amount, string(Refunded), e.PaymentID)
			}
			return err
		}),
	}
}

// UserPayments returns a user's payments, the latest first.
func UserPayments(ctx context.Context, db *sql.DB, userID string) ([]UserPayment, error) {
	rows, err := db.QueryContext(ctx, `SELECT payment_id, order_id, amount, currency, refunded, status, requested_at
		FROM user_payments WHERE user_id = $1 ORDER BY requested_at DESC, payment_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("user payments: %w", err)
	}
	defer rows.Close()
	var out []UserPayment
	for rows.Next() {
		var p UserPayment
		var at string
		if err := rows.Scan(&p.PaymentID, &p.OrderID, &p.Amount.Amount, &p.Amount.Currency, &p.Refunded.Amount, &p.Status, &at); err != nil {
			return nil, err
		}
		p.Refunded.Currency = p.Amount.Currency
		if p.RequestedAt, err = parseTS(at); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PaymentDetails is the payment details read model of one payment.
type PaymentDetails struct {
	PaymentID, OrderID, UserID, ConcertID, OrganizerID string
	Amount, Refunded                                   money.Money
	Status                                             PaymentStatus
	// FailureCode and FailureReason say why a failed payment failed.
	FailureCode, FailureReason string
	// GatewayID is the gateway's reference (a Stripe PaymentIntent).
	GatewayID   string
	RequestedAt time.Time
	// SettledAt is when the payment succeeded or failed.
	SettledAt time.Time
	Refunds   []RefundDetails
}

// RefundDetails is one refund of a payment.
type RefundDetails struct {
	RefundID string
	Amount   money.Money
	Reason   string
	// Status is "requested", "completed" or "failed".
	Status          string
	GatewayRefundID string
}

// PaymentDetailsProjection keeps each payment, and its refunds, in the
// tables payment_details and payment_refunds.
func PaymentDetailsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "finance-payment-details",
		Tables: []string{"payment_details", "payment_refunds"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("payment_details")+` (
				payment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, user_id TEXT NOT NULL, concert_id TEXT NOT NULL,
				organizer_id TEXT NOT NULL, amount BIGINT NOT NULL, currency TEXT NOT NULL, refunded BIGINT NOT NULL,
				status TEXT NOT NULL, failure_code TEXT NOT NULL, failure_reason TEXT NOT NULL, gateway_id TEXT NOT NULL,
				requested_at TEXT NOT NULL, settled_at TEXT NOT NULL);
				CREATE TABLE IF NOT EXISTS `+t.Name("payment_refunds")+` (
				refund_id TEXT PRIMARY KEY, payment_id TEXT NOT NULL, amount BIGINT NOT NULL, reason TEXT NOT NULL,
				status TEXT NOT NULL, gateway_refund_id TEXT NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("payment_refunds", "by_payment")+` ON `+t.Name("payment_refunds")+` (payment_id)`)
			return err
		},
		Apply: apply(reg, func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, v any) error {
			pd, pr := t.Name("payment_details"), t.Name("payment_refunds")
			var err error
			switch e := v.(type) {
			case PaymentRequested:
				_, err = tx.Exec(ctx, `INSERT INTO `+pd+` (payment_id, order_id, user_id, concert_id, organizer_id, amount, currency,
					refunded, status, failure_code, failure_reason, gateway_id, requested_at, settled_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, '', '', '', $9, '') ON CONFLICT (payment_id) DO NOTHING`,
					e.PaymentID, e.OrderID, e.UserID, e.ConcertID, e.OrganizerID, e.Amount.Amount, e.Amount.Currency, string(Pending), ts(e.RequestedAt))
			case PaymentCaptured:
				_, err = tx.Exec(ctx, `UPDATE `+pd+` SET status = $1, gateway_id = $2, settled_at = $3
					WHERE payment_id = $4`, string(Succeeded), e.GatewayID, ts(e.CapturedAt), e.PaymentID)
			case PaymentDeclined:
				_, err = tx.Exec(ctx, `UPDATE `+pd+` SET status = $1, failure_code = $2, failure_reason = $3, settled_at = $4
					WHERE payment_id = $5`, string(Failed), e.Code, e.Reason, ts(e.FailedAt), e.PaymentID)
			case RefundRequested:
				_, err = tx.Exec(ctx, `INSERT INTO `+pr+` (refund_id, payment_id, amount, reason, status, gateway_refund_id)
					VALUES ($1, $2, $3, $4, $5, '') ON CONFLICT (refund_id) DO NOTHING`,
					e.RefundID, e.PaymentID, e.Amount.Amount, e.Reason, refundRequested)
			case RefundCompleted:
				if _, err = tx.Exec(ctx, `UPDATE `+pr+` SET status = $1, gateway_refund_id = $2 WHERE refund_id = $3`,
					refundCompleted, e.GatewayRefundID, e.RefundID); err != nil {
					return err
				}
				_, err = tx.Exec(ctx, `UPDATE `+pd+` SET refunded = $1, status = CASE WHEN amount = $1 THEN $2 ELSE status END
					WHERE payment_id = $3`, e.TotalRefunded.Amount, string(Refunded), e.PaymentID)
			case RefundFailed:
				_, err = tx.Exec(ctx, `UPDATE `+pr+` SET status = $1 WHERE refund_id = $2`, refundFailed, e.RefundID)
			}
			return err
		}),
	}
}

// PaymentDetailsOf returns the details of a payment; sql.ErrNoRows if
// there is none.
func PaymentDetailsOf(ctx context.Context, db *sql.DB, paymentID string) (PaymentDetails, error) {
	var d PaymentDetails
	var req, settled string
	err := db.QueryRowContext(ctx, `SELECT payment_id, order_id, user_id, concert_id, organizer_id, amount, currency, refunded,
		status, failure_code, failure_reason, gateway_id, requested_at, settled_at FROM payment_details WHERE payment_id = $1`, paymentID).
		Scan(&d.PaymentID, &d.OrderID, &d.UserID, &d.ConcertID, &d.OrganizerID, &d.Amount.Amount, &d.Amount.Currency, &d.Refunded.Amount,
			&d.Status, &d.FailureCode, &d.FailureReason, &d.GatewayID, &req, &settled)
	if err != nil {
		return d, fmt.Errorf("payment details %s: %w", paymentID, err)
	}
	d.Refunded.Currency = d.Amount.Currency
	if d.RequestedAt, err = parseTS(req); err != nil {
		return d, err
	}
	if d.SettledAt, err = parseTS(settled); err != nil {
		return d, err
	}
	rows, err := db.QueryContext(ctx, `SELECT refund_id, amount, reason, status, gateway_refund_id FROM payment_refunds
		WHERE payment_id = $1 ORDER BY refund_id`, paymentID)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		r := RefundDetails{Amount: money.Money{Currency: d.Amount.Currency}}
		if err := rows.Scan(&r.RefundID, &r.Amount.Amount, &r.Reason, &r.Status, &r.GatewayRefundID); err != nil {
			return d, err
		}
		d.Refunds = append(d.Refunds, r)
	}
	return d, rows.Err()
}

// UserInvoice is one line of the user invoices read model.
type UserInvoice struct {
	InvoiceID, Number, OrderID, ConcertID string
	Total, Credited                       money.Money
	IssuedAt                              time.Time
}

// UserInvoicesProjection keeps each user's invoices in user_invoices, and
// their credit notes in user_invoice_credits.
func UserInvoicesProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "finance-user-invoices",
		Tables: []string{"user_invoices", "user_invoice_credits"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("user_invoices")+` (
				invoice_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, number TEXT NOT NULL, order_id TEXT NOT NULL,
				concert_id TEXT NOT NULL, total BIGINT NOT NULL, currency TEXT NOT NULL, issued_at TEXT NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("user_invoices", "by_user")+` ON `+t.Name("user_invoices")+` (user_id);
				CREATE TABLE IF NOT EXISTS `+t.Name("user_invoice_credits")+` (
				credit_note_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, amount BIGINT NOT NULL)`)
			return err
		},
		Apply: apply(reg, func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, v any) error {
			var err error
			switch e := v.(type) {
			case InvoiceIssued:
				_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("user_invoices")+` (invoice_id, user_id, number, order_id, concert_id, total, currency, issued_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (invoice_id) DO NOTHING`,
					e.InvoiceID, e.UserID, e.Number, e.OrderID, e.ConcertID, e.Total.Amount, e.Total.Currency, ts(e.IssuedAt))
			case CreditNoteIssued:
				_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("user_invoice_credits")+` (credit_note_id, invoice_id, amount)
					VALUES ($1, $2, $3) ON CONFLICT (credit_note_id) DO NOTHING`, e.CreditNoteID, e.InvoiceID, e.Amount.Amount)
			}
			return err
		}),
	}
}

// UserInvoices returns a user's invoices, by number.
func UserInvoices(ctx context.Context, db *sql.DB, userID string) ([]UserInvoice, error) {
	rows, err := db.QueryContext(ctx, `SELECT i.invoice_id, i.number, i.order_id, i.concert_id, i.total, i.currency, i.issued_at,
		CAST(COALESCE(SUM(c.amount), 0) AS BIGINT)
		FROM user_invoices i LEFT JOIN user_invoice_credits c ON c.invoice_id = i.invoice_id
		WHERE i.user_id = $1
		GROUP BY i.invoice_id, i.number, i.order_id, i.concert_id, i.total, i.currency, i.issued_at
		ORDER BY i.number`, userID)
	if err != nil {
		return nil, fmt.Errorf("user invoices: %w", err)
	}
	defer rows.Close()
	var out []UserInvoice
	for rows.Next() {
		var i UserInvoice
		var at string
		if err := rows.Scan(&i.InvoiceID, &i.Number, &i.OrderID, &i.ConcertID, &i.Total.Amount, &i.Total.Currency, &at, &i.Credited.Amount); err != nil {
			return nil, err
		}
		i.Credited.Currency = i.Total.Currency
		if i.IssuedAt, err = parseTS(at); err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// InvoiceDetails is the invoice details read model of one invoice.
type InvoiceDetails struct {
	InvoiceID, Number, OrderID, PaymentID, UserID, OrganizerID, ConcertID string
	Buyer                                                                 BillingInfo
	Lines                                                                 []InvoiceLine
	Total                                                                 money.Money
	IssuedAt                                                              time.Time
	CreditNotes                                                           []CreditNote
}

// CreditNote is a credit note of an invoice.
type CreditNote struct {
	CreditNoteID, Number, RefundID, Reason string
	Amount                                 money.Money
	IssuedAt                               time.Time
}

// InvoiceDetailsProjection keeps each invoice, its lines and buyer (as
// JSON text) and its credit notes, in invoice_details and
// invoice_credit_notes.
func InvoiceDetailsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "finance-invoice-details",
		Tables: []string{"invoice_details", "invoice_credit_notes"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("invoice_details")+` (
				invoice_id TEXT PRIMARY KEY, number TEXT NOT NULL UNIQUE, order_id TEXT NOT NULL, payment_id TEXT NOT NULL,
				user_id TEXT NOT NULL, organizer_id TEXT NOT NULL, concert_id TEXT NOT NULL, buyer TEXT NOT NULL,
				lines TEXT NOT NULL, total BIGINT NOT NULL, currency TEXT NOT NULL, issued_at TEXT NOT NULL);
				CREATE TABLE IF NOT EXISTS `+t.Name("invoice_credit_notes")+` (
				credit_note_id TEXT PRIMARY KEY, invoice_id TEXT NOT NULL, number TEXT NOT NULL UNIQUE, refund_id TEXT NOT NULL,
				amount BIGINT NOT NULL, reason TEXT NOT NULL, issued_at TEXT NOT NULL)`)
			return err
		},
		Apply: apply(reg, func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, v any) error {
			var err error
			switch e := v.(type) {
			case InvoiceIssued:
				buyer, _ := json.Marshal(e.Buyer)
				lines, _ := json.Marshal(e.Lines)
				_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("invoice_details")+` (invoice_id, number, order_id, payment_id, user_id,
					organizer_id, concert_id, buyer, lines, total, currency, issued_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (invoice_id) DO NOTHING`,
					e.InvoiceID, e.Number, e.OrderID, e.PaymentID, e.UserID, e.OrganizerID, e.ConcertID, string(buyer), string(lines),
					e.Total.Amount, e.Total.Currency, ts(e.IssuedAt))
			case CreditNoteIssued:
				_, err = tx.Exec(ctx, `INSERT INTO `+t.Name("invoice_credit_notes")+` (credit_note_id, invoice_id, number, refund_id, amount, reason, issued_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (credit_note_id) DO NOTHING`,
					e.CreditNoteID, e.InvoiceID, e.Number, e.RefundID, e.Amount.Amount, e.Reason, ts(e.IssuedAt))
			}
			return err
		}),
	}
}

// InvoiceDetailsOf returns the invoice of an order; sql.ErrNoRows if it
// has none.
func InvoiceDetailsOf(ctx context.Context, db *sql.DB, orderID string) (InvoiceDetails, error) {
	var d InvoiceDetails
	var buyer, lines, at string
	err := db.QueryRowContext(ctx, `SELECT invoice_id, number, order_id, payment_id, user_id, organizer_id, concert_id, buyer, lines,
		total, currency, issued_at FROM invoice_details WHERE order_id = $1`, orderID).
		Scan(&d.InvoiceID, &d.Number, &d.OrderID, &d.PaymentID, &d.UserID, &d.OrganizerID, &d.ConcertID, &buyer, &lines,
			&d.Total.Amount, &d.Total.Currency, &at)
	if err != nil {
		return d, fmt.Errorf("invoice of order %s: %w", orderID, err)
	}
	if err := json.Unmarshal([]byte(buyer), &d.Buyer); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(lines), &d.Lines); err != nil {
		return d, err
	}
	if d.IssuedAt, err = parseTS(at); err != nil {
		return d, err
	}
	rows, err := db.QueryContext(ctx, `SELECT credit_note_id, number, refund_id, reason, amount, issued_at FROM invoice_credit_notes
		WHERE invoice_id = $1 ORDER BY number`, d.InvoiceID)
	if err != nil {
		return d, err
	}
	defer rows.Close()
	for rows.Next() {
		c := CreditNote{Amount: money.Money{Currency: d.Total.Currency}}
		if err := rows.Scan(&c.CreditNoteID, &c.Number, &c.RefundID, &c.Reason, &c.Amount.Amount, &at); err != nil {
			return d, err
		}
		if c.IssuedAt, err = parseTS(at); err != nil {
			return d, err
		}
		d.CreditNotes = append(d.CreditNotes, c)
	}
	return d, rows.Err()
}

// Revenue is one line of an organizer's revenue: what a concert sold and
// refunded in one currency. Net is Sold minus Refunded.
type Revenue struct {
	ConcertID           string
	Sold, Refunded, Net money.Money
	// Payments counts the captured payments.
	Payments int
}

// OrganizerRevenueProjection keeps, per payment, what was captured and
// refunded, in revenue_payments; [OrganizerRevenue] sums it per concert
// and currency. Currencies are never added together.
func OrganizerRevenueProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "finance-organizer-revenue",
		Tables: []string{"revenue_payments"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("revenue_payments")+` (
				payment_id TEXT PRIMARY KEY, organizer_id TEXT NOT NULL, concert_id TEXT NOT NULL, currency TEXT NOT NULL,
				captured BOOLEAN NOT NULL, sold BIGINT NOT NULL, refunded BIGINT NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("revenue_payments", "by_organizer")+` ON `+t.Name("revenue_payments")+` (organizer_id)`)
			return err
		},
		Apply: apply(reg, func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, v any) error {
			table := t.Name("revenue_payments")
			var err error
			switch e := v.(type) {
			case PaymentRequested:
				_, err = tx.Exec(ctx, `INSERT INTO `+table+` (payment_id, organizer_id, concert_id, currency, captured, sold, refunded)
					VALUES ($1, $2, $3, $4, FALSE, 0, 0) ON CONFLICT (payment_id) DO NOTHING`,
					e.PaymentID, e.OrganizerID, e.ConcertID, e.Amount.Currency)
			case PaymentCaptured:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET captured = TRUE, sold = $1 WHERE payment_id = $2`, e.Amount.Amount, e.PaymentID)
			case RefundCompleted:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET refunded = $1 WHERE payment_id = $2`, e.TotalRefunded.Amount, e.PaymentID)
			}
			return err
		}),
	}
}

// OrganizerRevenue returns an organizer's revenue per concert and
// currency, by concert then currency.
func OrganizerRevenue(ctx context.Context, db *sql.DB, organizerID string) ([]Revenue, error) {
	rows, err := db.QueryContext(ctx, `SELECT concert_id, currency, CAST(SUM(sold) AS BIGINT), CAST(SUM(refunded) AS BIGINT), count(*)
		FROM revenue_payments WHERE organizer_id = $1 AND captured
		GROUP BY concert_id, currency ORDER BY concert_id, currency`, organizerID)
	if err != nil {
		return nil, fmt.Errorf("organizer revenue: %w", err)
	}
	defer rows.Close()
	var out []Revenue
	for rows.Next() {
		var r Revenue
		var cur string
		if err := rows.Scan(&r.ConcertID, &cur, &r.Sold.Amount, &r.Refunded.Amount, &r.Payments); err != nil {
			return nil, err
		}
		r.Sold.Currency, r.Refunded.Currency, r.Net.Currency = cur, cur, cur
		r.Net.Amount = r.Sold.Amount - r.Refunded.Amount
		out = append(out, r)
	}
	return out, rows.Err()
}

// Projections returns the module's read models.
func Projections(reg *es.Registry) []sqlprojection.Projection {
	return []sqlprojection.Projection{
		UserPaymentsProjection(reg), PaymentDetailsProjection(reg),
		UserInvoicesProjection(reg), InvoiceDetailsProjection(reg),
		OrganizerRevenueProjection(reg),
	}
}
