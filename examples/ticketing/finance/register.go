package finance

import (
	"errors"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// The module's internal messages: finance sends them to itself through
// the outbox, so that every call to the gateway and every invoice happens
// in the relay, after the decision that asks for it was stored.

// PaymentTimedOut is a payment's deadline: delivered at its GiveUpAt, it
// fails the payment if the gateway has not answered by then.
type PaymentTimedOut struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
}

// InvoiceDue asks for the invoice of a captured payment.
type InvoiceDue struct {
	OrderID     string        `json:"order_id"`
	PaymentID   string        `json:"payment_id"`
	UserID      string        `json:"user_id"`
	ConcertID   string        `json:"concert_id"`
	OrganizerID string        `json:"organizer_id"`
	Lines       []InvoiceLine `json:"lines"`
	Total       money.Money   `json:"total"`
	PaidAt      time.Time     `json:"paid_at"`
}

// CreditDue asks for the credit note of a completed refund.
type CreditDue struct {
	OrderID     string      `json:"order_id"`
	OrganizerID string      `json:"organizer_id"`
	RefundID    string      `json:"refund_id"`
	Amount      money.Money `json:"amount"`
	Reason      string      `json:"reason"`
	RefundedAt  time.Time   `json:"refunded_at"`
}

// ReverseCapture asks the gateway to give back a capture that came after
// its payment had failed.
type ReverseCapture struct {
	PaymentID string      `json:"payment_id"`
	OrderID   string      `json:"order_id"`
	GatewayID string      `json:"gateway_id"`
	Amount    money.Money `json:"amount"`
}

// Register registers the module's public messages ([RegisterMessages]),
// its events and its internal messages in reg under their stored names
// ("finance.PaymentRequested", ...).
func Register(reg *es.Registry) error {
	return errors.Join(
		RegisterMessages(reg),
		es.Register[PaymentRequested](reg, "finance.PaymentRequested"),
		es.Register[PaymentCaptured](reg, "finance.PaymentCaptured"),
		es.Register[PaymentDeclined](reg, "finance.PaymentDeclined"),
		es.Register[LateCaptureDetected](reg, "finance.LateCaptureDetected"),
		es.Register[CaptureReversed](reg, "finance.CaptureReversed"),
		es.Register[RefundRequested](reg, "finance.RefundRequested"),
		es.Register[RefundCompleted](reg, "finance.RefundCompleted"),
		es.Register[RefundFailed](reg, "finance.RefundFailed"),
		es.Register[InvoiceIssued](reg, "finance.InvoiceIssued"),
		es.Register[CreditNoteIssued](reg, "finance.CreditNoteIssued"),
		es.Register[InvoiceNumbered](reg, "finance.InvoiceNumbered"),
		es.Register[CreditNoteNumbered](reg, "finance.CreditNoteNumbered"),
		es.Register[BillingInfoRecorded](reg, "finance.BillingInfoRecorded"),
		es.Register[PaymentTimedOut](reg, "finance.PaymentTimedOut"),
		es.Register[InvoiceDue](reg, "finance.InvoiceDue"),
		es.Register[CreditDue](reg, "finance.CreditDue"),
		es.Register[ReverseCapture](reg, "finance.ReverseCapture"),
	)
}
