// Package finance is the ticketing example's financial module: payments
// through a payment gateway (Stripe in production, a fake by default),
// refunds and invoices.
//
// Other modules talk to it only through the messages in this file: the
// orders process sends RequestPayment and RefundPayment through the outbox,
// and finance answers with PaymentSucceeded, PaymentFailed and
// PaymentRefunded. Its events are its own.
package finance

import (
	"errors"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// RequestPayment asks finance to charge a buyer for one order. The payment
// ID is the idempotency key all the way to the gateway: a repeated request
// charges once. Its message key is the payment ID.
type RequestPayment struct {
	PaymentID   string      `json:"payment_id"`
	OrderID     string      `json:"order_id"`
	UserID      string      `json:"user_id"`
	ConcertID   string      `json:"concert_id"`
	OrganizerID string      `json:"organizer_id"`
	Amount      money.Money `json:"amount"`
	// Lines become the invoice's lines; their total equals Amount.
	Lines []InvoiceLine `json:"lines"`
}

// InvoiceLine is one line of an invoice: Quantity items at UnitPrice.
type InvoiceLine struct {
	Description string      `json:"description"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
}

// RefundPayment asks finance to give back Amount of a captured payment
// (all of it or part). The refund ID is its idempotency key.
type RefundPayment struct {
	PaymentID string      `json:"payment_id"`
	RefundID  string      `json:"refund_id"`
	OrderID   string      `json:"order_id"`
	Amount    money.Money `json:"amount"`
	Reason    string      `json:"reason"`
}

// PaymentSucceeded tells the orders process that an order's payment was
// captured.
type PaymentSucceeded struct {
	PaymentID string      `json:"payment_id"`
	OrderID   string      `json:"order_id"`
	Amount    money.Money `json:"amount"`
}

// PaymentFailed tells the orders process that an order's payment will not
// be captured (declined, or the gateway gave up); Reason says why in words
// a buyer can read.
type PaymentFailed struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
	Reason    string `json:"reason"`
}

// PaymentRefunded tells the orders process that a refund went through.
type PaymentRefunded struct {
	PaymentID string      `json:"payment_id"`
	RefundID  string      `json:"refund_id"`
	OrderID   string      `json:"order_id"`
	Amount    money.Money `json:"amount"`
}

// RegisterMessages registers the module's public messages under their
// names ("finance.RequestPayment", ...).
func RegisterMessages(reg *es.Registry) error {
	return errors.Join(
		es.Register[RequestPayment](reg, "finance.RequestPayment"),
		es.Register[RefundPayment](reg, "finance.RefundPayment"),
		es.Register[PaymentSucceeded](reg, "finance.PaymentSucceeded"),
		es.Register[PaymentFailed](reg, "finance.PaymentFailed"),
		es.Register[PaymentRefunded](reg, "finance.PaymentRefunded"),
	)
}
