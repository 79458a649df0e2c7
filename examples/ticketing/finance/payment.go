package finance

import (
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// Business errors of payments.
var (
	// ErrInvalidPayment: a payment request lacks an ID, an order, a user,
	// an organizer or lines, or its amount is not positive.
	ErrInvalidPayment = errors.New("finance: invalid payment request")
	// ErrLinesDoNotAddUp: the lines of a payment request do not add up to
	// its amount.
	ErrLinesDoNotAddUp = errors.New("finance: the lines do not add up to the amount")
	// ErrPaymentAlreadyRequested: the order already has a payment (one
	// payment per order), and this request is not a repeat of it.
	ErrPaymentAlreadyRequested = errors.New("finance: the order already has a payment")
	// ErrUnknownPayment: no payment was requested for the order.
	ErrUnknownPayment = errors.New("finance: no such payment")
	// ErrCaptureMismatch: the gateway reports a capture of another amount
	// than the one requested.
	ErrCaptureMismatch = errors.New("finance: the captured amount differs from the requested one")
	// ErrNotCaptured: only a captured payment can be refunded.
	ErrNotCaptured = errors.New("finance: the payment was not captured")
	// ErrRefundExceedsCapture: the refunds of a payment would exceed what
	// was captured.
	ErrRefundExceedsCapture = errors.New("finance: refunds would exceed the captured amount")
	// ErrInvalidRefund: a refund lacks its ID or its amount is not
	// positive.
	ErrInvalidRefund = errors.New("finance: invalid refund")
	// ErrRefundIDReused: a refund ID was used before for another amount.
	ErrRefundIDReused = errors.New("finance: refund ID already used for another refund")
	// ErrUnknownRefund: the payment has no refund with that ID.
	ErrUnknownRefund = errors.New("finance: no such refund")
)

// PaymentStream returns the stream of the payment of an order. Keying the
// stream by the order, not by the payment ID, makes "one payment per
// order" a property of one stream.
func PaymentStream(orderID string) string { return "payment-" + orderID }

// PaymentStatus is where a payment stands.
type PaymentStatus string

// Payment statuses.
const (
	// Pending: requested, the gateway's outcome not known yet.
	Pending PaymentStatus = "pending"
	// Succeeded: captured (perhaps partly refunded since).
	Succeeded PaymentStatus = "succeeded"
	// Failed: declined, or the gateway did not answer in time.
	Failed PaymentStatus = "failed"
	// Refunded: captured, then refunded in full.
	Refunded PaymentStatus = "refunded"
)

// Failure codes of PaymentDeclined that are not the gateway's own.
const (
	// CodeGatewayUnavailable: the gateway did not answer before the
	// payment's deadline.
	CodeGatewayUnavailable = "gateway_unavailable"
	// CodeInvalidRequest: the payment request itself was refused.
	CodeInvalidRequest = "invalid_request"
)

// PaymentEvent is an event of a payment stream.
type PaymentEvent interface{ isPaymentEvent() }

// PaymentRequested: an order's payment was asked for; the gateway is
// called after this is stored, never before.
type PaymentRequested struct {
	PaymentID   string        `json:"payment_id"`
	OrderID     string        `json:"order_id"`
	UserID      string        `json:"user_id"`
	ConcertID   string        `json:"concert_id"`
	OrganizerID string        `json:"organizer_id"`
	Amount      money.Money   `json:"amount"`
	Lines       []InvoiceLine `json:"lines"`
	RequestedAt time.Time     `json:"requested_at"`
	// GiveUpAt is when a payment still without an outcome fails.
	GiveUpAt time.Time `json:"give_up_at"`
}

// PaymentCaptured: the gateway captured the amount.
type PaymentCaptured struct {
	PaymentID   string      `json:"payment_id"`
	OrderID     string      `json:"order_id"`
	OrganizerID string      `json:"organizer_id"`
	Amount      money.Money `json:"amount"`
	// GatewayID is the gateway's reference (a Stripe PaymentIntent ID).
	GatewayID  string    `json:"gateway_id"`
	CapturedAt time.Time `json:"captured_at"`
}

// PaymentDeclined: the payment failed for good: the card was declined,
// the request refused, or the gateway did not answer in time (Code
// [CodeGatewayUnavailable]).
type PaymentDeclined struct {
	PaymentID string `json:"payment_id"`
	OrderID   string `json:"order_id"`
	// Code is machine-readable (a Stripe decline code, say).
	Code string `json:"code"`
	// Reason is for the buyer.
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
}

// LateCaptureDetected: the gateway captured a payment that had already
// failed (it answered after the deadline). The payment stays failed, and
// the capture is given back (see CaptureReversed).
type LateCaptureDetected struct {
	PaymentID  string      `json:"payment_id"`
	OrderID    string      `json:"order_id"`
	Amount     money.Money `json:"amount"`
	GatewayID  string      `json:"gateway_id"`
	DetectedAt time.Time   `json:"detected_at"`
}

// CaptureReversed: a late capture was refunded in full.
type CaptureReversed struct {
	PaymentID       string      `json:"payment_id"`
	OrderID         string      `json:"order_id"`
	Amount          money.Money `json:"amount"`
	GatewayRefundID string      `json:"gateway_refund_id"`
	ReversedAt      time.Time   `json:"reversed_at"`
}

// RefundRequested: part or all of a captured payment is to be given back.
// The amount is reserved at once, so that concurrent refunds can never
// add up to more than was captured.
type RefundRequested struct {
	PaymentID   string      `json:"payment_id"`
	OrderID     string      `json:"order_id"`
	RefundID    string      `json:"refund_id"`
	Amount      money.Money `json:"amount"`
	Reason      string      `json:"reason"`
	RequestedAt time.Time   `json:"requested_at"`
}

// RefundCompleted: the gateway gave the refund back. TotalRefunded is
// the sum of the payment's completed refunds, this one included.
type RefundCompleted struct {
	PaymentID       string      `json:"payment_id"`
	OrderID         string      `json:"order_id"`
	OrganizerID     string      `json:"organizer_id"`
	RefundID        string      `json:"refund_id"`
	Amount          money.Money `json:"amount"`
	TotalRefunded   money.Money `json:"total_refunded"`
	GatewayRefundID string      `json:"gateway_refund_id"`
	CompletedAt     time.Time   `json:"completed_at"`
}

// RefundFailed: the gateway refused a refund; its amount is released.
type RefundFailed struct {
	PaymentID string    `json:"payment_id"`
	OrderID   string    `json:"order_id"`
	RefundID  string    `json:"refund_id"`
	Reason    string    `json:"reason"`
	FailedAt  time.Time `json:"failed_at"`
}

func (PaymentRequested) isPaymentEvent()    {}
func (PaymentCaptured) isPaymentEvent()     {}
func (PaymentDeclined) isPaymentEvent()     {}
func (LateCaptureDetected) isPaymentEvent() {}
func (CaptureReversed) isPaymentEvent()     {}
func (RefundRequested) isPaymentEvent()     {}
func (RefundCompleted) isPaymentEvent()     {}
func (RefundFailed) isPaymentEvent()        {}

// PaymentCommand is a command for a payment stream.
type PaymentCommand interface{ isPaymentCommand() }

// Request asks for an order's payment. At is when it was asked;
// GiveUpAt when a payment without an outcome fails.
type Request struct {
	RequestPayment
	At       time.Time
	GiveUpAt time.Time
}

// RecordCapture records the gateway's report that it captured a payment.
type RecordCapture struct {
	GatewayID string
	Amount    money.Money
	At        time.Time
}

// RecordDecline records the gateway's final refusal of a payment.
type RecordDecline struct {
	Code, Reason string
	At           time.Time
}

// GiveUp fails a payment still pending at its deadline. Before the
// deadline, or once the payment has an outcome, it does nothing.
type GiveUp struct{ At time.Time }

// RecordReversal records that a late capture was refunded.
type RecordReversal struct {
	GatewayRefundID string
	At              time.Time
}

// RequestRefund asks to give back Amount of a captured payment.
type RequestRefund struct {
	RefundID string
	Amount   money.Money
	Reason   string
	At       time.Time
}

// RecordRefund records that the gateway completed a refund.
type RecordRefund struct {
	RefundID        string
	GatewayRefundID string
	At              time.Time
}

// RecordRefundFailure records that the gateway refused a refund.
type RecordRefundFailure struct {
	RefundID string
	Reason   string
	At       time.Time
}

func (Request) isPaymentCommand()             {}
func (RecordCapture) isPaymentCommand()       {}
func (RecordDecline) isPaymentCommand()       {}
func (GiveUp) isPaymentCommand()              {}
func (RecordReversal) isPaymentCommand()      {}
func (RequestRefund) isPaymentCommand()       {}
func (RecordRefund) isPaymentCommand()        {}
func (RecordRefundFailure) isPaymentCommand() {}

// Payment is the state of an order's payment.
type Payment struct {
	PaymentID   string
	OrderID     string
	UserID      string
	ConcertID   string
	OrganizerID string
	Amount      money.Money
	Lines       []InvoiceLine
	Status      PaymentStatus // "" before the request
	GatewayID   string
	GiveUpAt    time.Time
	// Refunded is the sum of completed refunds; Reserved adds the ones
	// still at the gateway.
	Refunded, Reserved money.Money
	// Refunds by refund ID.
	Refunds map[string]*Refund
	// LateCapture reports a capture after the payment failed; Reversed
	// that it was given back.
	LateCapture, Reversed bool
	LateGatewayID         string
}

// Refund is one refund of a payment.
type Refund struct {
	Amount money.Money
	Reason string
	// Status is "requested", "completed" or "failed".
	Status string
}

// Refund statuses.
const (
	refundRequested = "requested"
	refundCompleted = "completed"
	refundFailed    = "failed"
)

// PaymentDecider returns the decider of payment streams.
//
// The workshop design charges the card inside the command handler, so a
// crash after the charge loses its outcome and a retry charges again, and
// it models the amount as a decimal without a currency. Here a payment is
// only requested by a command; the gateway is called from the outbox's
// relay with the payment ID as idempotency key, and its outcome comes
// back as another command (RecordCapture, RecordDecline), whichever of the
// synchronous answer and the webhook arrives first; the other finds the
// payment settled and does nothing.
func PaymentDecider() es.Decider[Payment, PaymentCommand, PaymentEvent] {
	return es.Decider[Payment, PaymentCommand, PaymentEvent]{
		Initial: func() Payment { return Payment{} },
		Decide:  decidePayment,
		Evolve:  evolvePayment,
	}
}

func decidePayment(p Payment, cmd PaymentCommand) ([]PaymentEvent, error) {
	switch c := cmd.(type) {
	case Request:
		return decideRequest(p, c)
	case RecordCapture:
		switch p.Status {
		case "":
			return nil, ErrUnknownPayment
		case Pending:
			if err := sameMoney(c.Amount, p.Amount); err != nil {
				return nil, err
			}
			return []PaymentEvent{PaymentCaptured{PaymentID: p.PaymentID, OrderID: p.OrderID, OrganizerID: p.OrganizerID,
				Amount: c.Amount, GatewayID: c.GatewayID, CapturedAt: c.At}}, nil
		case Failed:
			if p.LateCapture {
				return nil, nil
			}
			return []PaymentEvent{LateCaptureDetected{PaymentID: p.PaymentID, OrderID: p.OrderID, Amount: c.Amount,
				GatewayID: c.GatewayID, DetectedAt: c.At}}, nil
		}
		return nil, nil // captured already: the other report of the same capture
	case RecordDecline:
		switch p.Status {
		case "":
			return nil, ErrUnknownPayment
		case Pending:
			return []PaymentEvent{PaymentDeclined{PaymentID: p.PaymentID, OrderID: p.OrderID, Code: c.Code, Reason: c.Reason, FailedAt: c.At}}, nil
		}
		return nil, nil
	case GiveUp:
		if p.Status != Pending || c.At.Before(p.GiveUpAt) {
			return nil, nil
		}
		return []PaymentEvent{PaymentDeclined{PaymentID: p.PaymentID, OrderID: p.OrderID, Code: CodeGatewayUnavailable,
			Reason: "the payment provider did not answer in time; nothing was charged", FailedAt: c.At}}, nil
	case RecordReversal:
		if !p.LateCapture || p.Reversed {
			return nil, nil
		}
		return []PaymentEvent{CaptureReversed{PaymentID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount,
			GatewayRefundID: c.GatewayRefundID, ReversedAt: c.At}}, nil
	case RequestRefund:
		return decideRefund(p, c)
	case RecordRefund:
		r := p.Refunds[c.RefundID]
		switch {
		case r == nil:
			return nil, fmt.Errorf("%w: %q", ErrUnknownRefund, c.RefundID)
		case r.Status != refundRequested:
			return nil, nil
		}
		total := p.Refunded
		total.Amount += r.Amount.Amount
		return []PaymentEvent{RefundCompleted{PaymentID: p.PaymentID, OrderID: p.OrderID, OrganizerID: p.OrganizerID,
			RefundID: c.RefundID, Amount: r.Amount, TotalRefunded: total, GatewayRefundID: c.GatewayRefundID, CompletedAt: c.At}}, nil
	case RecordRefundFailure:
		r := p.Refunds[c.RefundID]
		switch {
		case r == nil:
			return nil, fmt.Errorf("%w: %q", ErrUnknownRefund, c.RefundID)
		case r.Status != refundRequested:
			return nil, nil
		}
		return []PaymentEvent{RefundFailed{PaymentID: p.PaymentID, OrderID: p.OrderID, RefundID: c.RefundID, Reason: c.Reason, FailedAt: c.At}}, nil
	}
	return nil, fmt.Errorf("finance: unknown payment command %T", cmd)
}

func decideRequest(p Payment, c Request) ([]PaymentEvent, error) {
	if err := validateRequest(c.RequestPayment); err != nil {
		return nil, err
	}
	if p.Status != "" {
		if p.PaymentID == c.PaymentID && p.Amount == c.Amount {
			return nil, nil // a repeat of the same request
		}
		return nil, fmt.Errorf("%w: order %s has payment %s", ErrPaymentAlreadyRequested, p.OrderID, p.PaymentID)
	}
	return []PaymentEvent{PaymentRequested{PaymentID: c.PaymentID, OrderID: c.OrderID, UserID: c.UserID,
		ConcertID: c.ConcertID, OrganizerID: c.OrganizerID, Amount: c.Amount, Lines: c.Lines,
		RequestedAt: c.At, GiveUpAt: c.GiveUpAt}}, nil
}

// validateRequest checks a payment request on its own: IDs, a positive
// amount in a valid currency, and lines in that currency adding up to it.
func validateRequest(r RequestPayment) error {
	switch {
	case r.PaymentID == "" || r.OrderID == "" || r.UserID == "" || r.OrganizerID == "":
		return fmt.Errorf("%w: payment, order, user and organizer IDs are required", ErrInvalidPayment)
	case r.Amount.Amount <= 0:
		return fmt.Errorf("%w: amount %s is not positive", ErrInvalidPayment, r.Amount)
	case len(r.Lines) == 0:
		return fmt.Errorf("%w: no lines", ErrInvalidPayment)
	}
	if err := r.Amount.Validate(); err != nil {
		return err
	}
	total, err := LinesTotal(r.Lines, r.Amount.Currency)
	if err != nil {
		return err
	}
	if total != r.Amount {
		return fmt.Errorf("%w: lines %s, amount %s", ErrLinesDoNotAddUp, total, r.Amount)
	}
	return nil
}

// LinesTotal returns the sum of lines, all of which must be in currency
// and have a positive quantity and a non-negative price.
func LinesTotal(lines []InvoiceLine, currency string) (money.Money, error) {
	total := money.Money{Currency: currency}
	for _, l := range lines {
		if l.Quantity <= 0 || l.UnitPrice.Amount < 0 {
			return money.Money{}, fmt.Errorf("%w: line %q: quantity %d, price %s", ErrInvalidPayment, l.Description, l.Quantity, l.UnitPrice)
		}
		sub, err := l.UnitPrice.Times(l.Quantity)
		if err != nil {
			return money.Money{}, err
		}
		if total, err = total.Add(sub); err != nil {
			return money.Money{}, fmt.Errorf("line %q: %w", l.Description, err)
		}
	}
	return total, nil
}

func decideRefund(p Payment, c RequestRefund) ([]PaymentEvent, error) {
	if c.RefundID == "" || c.Amount.Amount <= 0 {
		return nil, fmt.Errorf("%w: refund %q of %s", ErrInvalidRefund, c.RefundID, c.Amount)
	}
	if p.Status == "" {
		return nil, ErrUnknownPayment
	}
	if err := sameCurrency(c.Amount, p.Amount); err != nil {
		return nil, err
	}
	if r := p.Refunds[c.RefundID]; r != nil {
		if r.Amount == c.Amount {
			return nil, nil // a repeat
		}
		return nil, fmt.Errorf("%w: %q", ErrRefundIDReused, c.RefundID)
	}
	if p.Status != Succeeded {
		return nil, fmt.Errorf("%w: it is %s", ErrNotCaptured, p.Status)
	}
	if p.Reserved.Amount+c.Amount.Amount > p.Amount.Amount {
		return nil, fmt.Errorf("%w: captured %s, refunded or being refunded %s, asked %s", ErrRefundExceedsCapture, p.Amount, p.Reserved, c.Amount)
	}
	return []PaymentEvent{RefundRequested{PaymentID: p.PaymentID, OrderID: p.OrderID, RefundID: c.RefundID,
		Amount: c.Amount, Reason: c.Reason, RequestedAt: c.At}}, nil
}

// sameCurrency refuses amounts in two currencies.
func sameCurrency(a, b money.Money) error {
	if a.Currency != b.Currency {
		return fmt.Errorf("%w: %s and %s", money.ErrCurrencyMismatch, a.Currency, b.Currency)
	}
	return nil
}

func sameMoney(got, want money.Money) error {
	if err := sameCurrency(got, want); err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: captured %s, requested %s", ErrCaptureMismatch, got, want)
	}
	return nil
}

func evolvePayment(p Payment, e PaymentEvent) Payment {
	switch e := e.(type) {
	case PaymentRequested:
		p = Payment{PaymentID: e.PaymentID, OrderID: e.OrderID, UserID: e.UserID, ConcertID: e.ConcertID,
			OrganizerID: e.OrganizerID, Amount: e.Amount, Lines: e.Lines, Status: Pending, GiveUpAt: e.GiveUpAt,
			Refunded: money.Money{Currency: e.Amount.Currency}, Reserved: money.Money{Currency: e.Amount.Currency},
			Refunds: map[string]*Refund{}}
	case PaymentCaptured:
		p.Status, p.GatewayID = Succeeded, e.GatewayID
	case PaymentDeclined:
		p.Status = Failed
	case LateCaptureDetected:
		p.LateCapture, p.LateGatewayID = true, e.GatewayID
	case CaptureReversed:
		p.Reversed = true
	case RefundRequested:
		p.Refunds[e.RefundID] = &Refund{Amount: e.Amount, Reason: e.Reason, Status: refundRequested}
		p.Reserved.Amount += e.Amount.Amount
	case RefundCompleted:
		p.Refunds[e.RefundID].Status = refundCompleted
		p.Refunded = e.TotalRefunded
		if p.Refunded == p.Amount {
			p.Status = Refunded
		}
	case RefundFailed:
		r := p.Refunds[e.RefundID]
		r.Status = refundFailed
		p.Reserved.Amount -= r.Amount.Amount
	}
	return p
}
