package finance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"esgo.dev/examples/ticketing/money"
)

// StripeConfig configures a [StripeGateway].
type StripeConfig struct {
	// Key is the secret API key (sk_test_... or sk_live_...).
	Key string
	// URL is the API's base URL (default Stripe's; stripe-mock's in tests).
	URL string
	// HTTPClient makes the calls (default: one with Timeout).
	HTTPClient *http.Client
	// Timeout bounds one call (default 30s); a call that times out is a
	// transient failure, retried with the same idempotency key.
	Timeout time.Duration
	// MaxNetworkRetries is how many times stripe-go itself retries a call
	// that failed on the network or with a 5xx, with the same idempotency
	// key (default 0: the relay retries, with backoff, and sees each
	// failure).
	MaxNetworkRetries int64
	// DefaultPaymentMethod is charged when the buyer has no saved payment
	// method (test mode: "pm_card_visa"; leave empty in production).
	DefaultPaymentMethod string
}

// StripeGateway is the [Gateway] on Stripe's PaymentIntents and Refunds
// APIs, through stripe-go. Every call carries an idempotency key derived
// from the payment or refund ID, so a retried call, after a timeout or a
// crash, returns the first call's outcome and charges nothing more.
//
// A charge creates a PaymentIntent with the buyer's saved payment method
// (off-session: the buyer confirmed the order in the application) and
// confirms it. The PaymentIntent carries the payment and order IDs in its
// metadata, so that webhooks can be matched to the payment.
type StripeGateway struct {
	api                  *client.API
	defaultPaymentMethod string
}

// NewStripeGateway returns a gateway on Stripe.
func NewStripeGateway(cfg StripeConfig) (*StripeGateway, error) {
	if cfg.Key == "" {
		return nil, errors.New("finance: Stripe needs an API key")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cmp.Or(cfg.Timeout, 30*time.Second)}
	}
	bc := &stripe.BackendConfig{HTTPClient: hc, MaxNetworkRetries: stripe.Int64(cfg.MaxNetworkRetries),
		LeveledLogger: &stripe.LeveledLogger{Level: stripe.LevelNull}}
	if cfg.URL != "" {
		bc.URL = stripe.String(cfg.URL)
	}
	api := &client.API{}
	api.Init(cfg.Key, &stripe.Backends{
		API:     stripe.GetBackendWithConfig(stripe.APIBackend, bc),
		Connect: stripe.GetBackendWithConfig(stripe.ConnectBackend, bc),
		Uploads: stripe.GetBackendWithConfig(stripe.UploadsBackend, bc),
	})
	return &StripeGateway{api: api, defaultPaymentMethod: cfg.DefaultPaymentMethod}, nil
}

// Charge implements [Gateway]: it creates and confirms a PaymentIntent.
func (g *StripeGateway) Charge(ctx context.Context, c Charge) (ChargeResult, error) {
	pm := cmp.Or(c.PaymentMethod, g.defaultPaymentMethod)
	if pm == "" {
		return ChargeResult{}, &DeclinedError{Code: CodeInvalidRequest, Reason: "no payment method on file"}
	}
	create := &stripe.PaymentIntentParams{
		Amount:        stripe.Int64(c.Amount.Amount),
		Currency:      stripe.String(strings.ToLower(c.Amount.Currency)),
		PaymentMethod: stripe.String(pm),
		Description:   stripe.String(c.Description),
		// Cards only: no redirect-based methods for an off-session charge.
		PaymentMethodTypes: stripe.StringSlice([]string{"card"}),
	}
	create.Context = ctx
	create.IdempotencyKey = stripe.String(c.IdempotencyKey + "-create")
	create.AddMetadata("payment_id", c.PaymentID)
	create.AddMetadata("order_id", c.OrderID)
	create.AddMetadata("user_id", c.UserID)
	pi, err := g.api.PaymentIntents.New(create)
	if err != nil {
		return ChargeResult{}, stripeError(err)
	}
	if pi.Status == stripe.PaymentIntentStatusRequiresConfirmation || pi.Status == stripe.PaymentIntentStatusRequiresPaymentMethod {
		confirm := &stripe.PaymentIntentConfirmParams{PaymentMethod: stripe.String(pm), OffSession: stripe.Bool(true)}
		confirm.Context = ctx
		confirm.IdempotencyKey = stripe.String(c.IdempotencyKey + "-confirm")
		if pi, err = g.api.PaymentIntents.Confirm(pi.ID, confirm); err != nil {
			return ChargeResult{}, stripeError(err)
		}
	}
	res := ChargeResult{GatewayID: pi.ID, Amount: money.Money{Amount: pi.Amount, Currency: strings.ToUpper(string(pi.Currency))}}
	switch pi.Status {
	case stripe.PaymentIntentStatusSucceeded:
		res.Status = ChargeCaptured
	case stripe.PaymentIntentStatusProcessing, stripe.PaymentIntentStatusRequiresAction:
		res.Status = ChargePending
	case stripe.PaymentIntentStatusRequiresPaymentMethod:
		return ChargeResult{}, declined(pi.LastPaymentError)
	default:
		return ChargeResult{}, &DeclinedError{Code: string(pi.Status), Reason: "the payment was not completed"}
	}
	return res, nil
}

// Refund implements [Gateway].
func (g *StripeGateway) Refund(ctx context.Context, r RefundRequest) (RefundResult, error) {
	p := &stripe.RefundParams{PaymentIntent: stripe.String(r.GatewayID), Amount: stripe.Int64(r.Amount.Amount)}
	p.Context = ctx
	p.IdempotencyKey = stripe.String(r.IdempotencyKey)
	p.AddMetadata("refund_id", r.RefundID)
	p.AddMetadata("payment_id", r.PaymentID)
	p.AddMetadata("order_id", r.OrderID)
	re, err := g.api.Refunds.New(p)
	if err != nil {
		return RefundResult{}, stripeError(err)
	}
	switch re.Status {
	case stripe.RefundStatusSucceeded:
		return RefundResult{GatewayRefundID: re.ID}, nil
	case stripe.RefundStatusFailed, stripe.RefundStatusCanceled:
		return RefundResult{}, &DeclinedError{Code: string(re.FailureReason), Reason: "the refund failed"}
	}
	return RefundResult{GatewayRefundID: re.ID, Pending: true}, nil
}

// declined turns a PaymentIntent's last payment error into a decline.
func declined(e *stripe.Error) *DeclinedError {
	if e == nil {
		return &DeclinedError{Code: "requires_payment_method", Reason: "the payment method was not accepted"}
	}
	return &DeclinedError{Code: cmp.Or(string(e.DeclineCode), string(e.Code), "card_declined"), Reason: cmp.Or(e.Msg, "your card was declined")}
}

// stripeError sorts stripe-go's errors: card errors are declines, 5xx,
// 429 and network failures are transient ([ErrGatewayUnavailable]), the
// rest (an invalid request, a bad key) is returned as it is and retried
// until the payment's deadline.
func stripeError(err error) error {
	var se *stripe.Error
	if errors.As(err, &se) {
		switch {
		case se.Type == stripe.ErrorTypeCard:
			return declined(se)
		case se.HTTPStatusCode >= 500 || se.HTTPStatusCode == http.StatusTooManyRequests || se.Code == stripe.ErrorCodeLockTimeout:
			return fmt.Errorf("%w: stripe answered %d: %s", ErrGatewayUnavailable, se.HTTPStatusCode, se.Msg)
		}
		return fmt.Errorf("finance: stripe refused the call (%d %s %s): %s", se.HTTPStatusCode, se.Type, se.Code, se.Msg)
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %w", ErrGatewayUnavailable, err)
	}
	return fmt.Errorf("finance: stripe: %w", err)
}
