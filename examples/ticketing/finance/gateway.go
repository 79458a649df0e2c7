package finance

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"esgo.dev/examples/ticketing/money"
)

// Gateway is the payment gateway as finance needs it: charge and refund,
// each idempotent by its key. [StripeGateway] talks to Stripe;
// [FakeGateway] is the local default.
//
// Errors: a [*DeclinedError] is a final refusal (the payment fails with
// its reason); an error matching [ErrGatewayUnavailable] is transient
// (the call is retried with the same key); any other error is retried
// too, until the payment's deadline.
type Gateway interface {
	// Charge captures a payment. A second call with the same
	// IdempotencyKey charges nothing more and returns the first outcome.
	Charge(ctx context.Context, c Charge) (ChargeResult, error)
	// Refund gives back part or all of a captured payment. A second call
	// with the same IdempotencyKey refunds nothing more.
	Refund(ctx context.Context, r RefundRequest) (RefundResult, error)
}

// Charge is a payment to capture.
type Charge struct {
	// IdempotencyKey is derived from the payment ID: a retried charge
	// never charges twice.
	IdempotencyKey string
	PaymentID      string
	OrderID        string
	UserID         string
	Amount         money.Money
	// PaymentMethod is the buyer's saved payment method at the gateway,
	// if known.
	PaymentMethod string
	Description   string
}

// ChargeStatus is the gateway's answer to a charge.
type ChargeStatus string

// Charge statuses.
const (
	// ChargeCaptured: the money was taken.
	ChargeCaptured ChargeStatus = "captured"
	// ChargePending: the gateway will tell later (a webhook), e.g. after
	// the buyer's bank asked for authentication.
	ChargePending ChargeStatus = "pending"
)

// ChargeResult is a charge that the gateway accepted.
type ChargeResult struct {
	// GatewayID is the gateway's reference, e.g. a PaymentIntent ID.
	GatewayID string
	Status    ChargeStatus
	Amount    money.Money
}

// RefundRequest is a refund to make.
type RefundRequest struct {
	// IdempotencyKey is derived from the refund ID.
	IdempotencyKey string
	RefundID       string
	PaymentID      string
	OrderID        string
	// GatewayID is the captured payment's reference at the gateway.
	GatewayID string
	Amount    money.Money
}

// RefundResult is a refund the gateway accepted.
type RefundResult struct {
	GatewayRefundID string
	// Pending reports that the gateway will confirm later (a webhook).
	Pending bool
}

// ErrGatewayUnavailable matches transient gateway failures: timeouts,
// connection errors, 5xx answers, rate limits. The call may be retried
// with the same idempotency key.
var ErrGatewayUnavailable = errors.New("finance: payment gateway unavailable")

// DeclinedError is a final refusal by the gateway: a declined card,
// insufficient funds, an invalid request.
type DeclinedError struct {
	// Code is the gateway's code (e.g. Stripe's decline code).
	Code string
	// Reason is a message a buyer can read.
	Reason string
}

func (e *DeclinedError) Error() string {
	return fmt.Sprintf("finance: payment declined (%s): %s", e.Code, e.Reason)
}

// FakeGateway is a gateway in memory, the default of the example when
// no Stripe key is configured, and a test double. Like Stripe, it
// remembers idempotency keys: a repeated call returns the first outcome
// and charges nothing more. It can be told to decline the charges of a
// user, to leave them pending (a bank that never answers), or to fail the
// next calls as if the gateway were down.
//
// A FakeGateway is safe for concurrent use.
type FakeGateway struct {
	mu       sync.Mutex
	charges  map[string]fakeCharge // by idempotency key
	refunds  map[string]RefundResult
	declines map[string]string // user ID -> decline code
	pending  map[string]bool   // user IDs whose charges stay pending
	outages  int
	calls    int
}

// NewFakeGateway returns a fake gateway that captures every charge.
func NewFakeGateway() *FakeGateway {
	return &FakeGateway{charges: map[string]fakeCharge{}, refunds: map[string]RefundResult{}, declines: map[string]string{}, pending: map[string]bool{}}
}

// DeclineUser makes the gateway decline the charges of userID with code
// (e.g. "card_declined", "insufficient_funds").
func (g *FakeGateway) DeclineUser(userID, code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.declines[userID] = code
}

// PendUser makes the gateway accept the charges of userID without ever
// telling their outcome, as when the buyer's bank never answers: the
// payment stays pending until a webhook reports it ([Module.Record]) or
// its deadline fails it.
func (g *FakeGateway) PendUser(userID string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pending[userID] = true
}

// FailNext makes the next n calls fail with [ErrGatewayUnavailable].
func (g *FakeGateway) FailNext(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.outages = n
}

// FakeGatewayID is the reference the fake gateway gives a payment's
// charge, for a test's webhook to name it.
func FakeGatewayID(paymentID string) string { return "fake_pi_" + paymentID }

// Captured returns how many distinct charges were captured (pending ones
// are not).
func (g *FakeGateway) Captured() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.charges {
		if c.declined == "" && c.res.Status == ChargeCaptured {
			n++
		}
	}
	return n
}

// Calls returns how many calls the gateway received, repeats and
// failures included.
func (g *FakeGateway) Calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls
}

type fakeCharge struct {
	res      ChargeResult
	declined string // the decline code, if declined
}

// Charge implements [Gateway].
func (g *FakeGateway) Charge(ctx context.Context, c Charge) (ChargeResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if err := g.fail(ctx); err != nil {
		return ChargeResult{}, err
	}
	if c.IdempotencyKey == "" {
		return ChargeResult{}, errors.New("fake gateway: no idempotency key")
	}
	fc, ok := g.charges[c.IdempotencyKey]
	if !ok {
		// A declined attempt is remembered too, as Stripe does.
		status := ChargeCaptured
		if g.pending[c.UserID] {
			status = ChargePending
		}
		fc = fakeCharge{res: ChargeResult{GatewayID: FakeGatewayID(c.PaymentID), Status: status, Amount: c.Amount},
			declined: g.declines[c.UserID]}
		g.charges[c.IdempotencyKey] = fc
	}
	if fc.declined != "" {
		return ChargeResult{}, &DeclinedError{Code: fc.declined, Reason: "your card was declined"}
	}
	return fc.res, nil
}

// Refund implements [Gateway].
func (g *FakeGateway) Refund(ctx context.Context, r RefundRequest) (RefundResult, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if err := g.fail(ctx); err != nil {
		return RefundResult{}, err
	}
	if res, ok := g.refunds[r.IdempotencyKey]; ok {
		return res, nil
	}
	res := RefundResult{GatewayRefundID: "fake_re_" + r.RefundID}
	g.refunds[r.IdempotencyKey] = res
	return res, nil
}

func (g *FakeGateway) fail(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrGatewayUnavailable, err)
	}
	if g.outages > 0 {
		g.outages--
		return fmt.Errorf("%w: the fake gateway is down", ErrGatewayUnavailable)
	}
	return nil
}
