package finance

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// WebhookConfig configures a [WebhookHandler].
type WebhookConfig struct {
	// Secret is the endpoint's signing secret (whsec_...).
	Secret string
	// Tolerance is how old a signature's timestamp may be (default 5
	// minutes, Stripe's): an older delivery is refused as a replay.
	Tolerance time.Duration
	// MaxBody bounds the body's size (default 64 KiB).
	MaxBody int64
	// Clock stamps the commands (default es.SystemClock).
	Clock es.Clock
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// WebhookHandler receives Stripe's webhook events and records the
// outcomes they report as payment commands. Mount it where Stripe posts
// (e.g. POST /webhooks/stripe).
//
// It answers 413 to a body over MaxBody and 400 to a request whose
// Stripe-Signature is missing, wrong or older than Tolerance, writing
// nothing. A verified event becomes a command whose ID derives from the
// Stripe event ID: the payment stream records it as the causation of the
// events it appends, so the stream is the handler's inbox, in the same
// transaction as the effect: an event delivered twice (Stripe delivers at
// least once) takes effect once. An outcome the synchronous answer
// recorded first finds the payment settled and does nothing. It answers
// 200 to events it has no use for, and 500 when the store fails, so
// that Stripe delivers again.
type WebhookHandler struct {
	m   *Module
	cfg WebhookConfig
}

// NewWebhookHandler returns the webhook handler of m.
func NewWebhookHandler(m *Module, cfg WebhookConfig) (*WebhookHandler, error) {
	if cfg.Secret == "" {
		return nil, errors.New("finance: a webhook handler needs the endpoint's signing secret")
	}
	cfg.Tolerance = cmp.Or(cfg.Tolerance, webhook.DefaultTolerance)
	cfg.MaxBody = cmp.Or(cfg.MaxBody, 64<<10)
	if cfg.Clock == nil {
		cfg.Clock = es.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &WebhookHandler{m: m, cfg: cfg}, nil
}

// ServeHTTP implements http.Handler.
func (h *WebhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "webhook body too large", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), h.cfg.Secret,
		// Only a few fields of the event's object are read, all stable
		// across API versions: an endpoint on another version still works.
		webhook.ConstructEventOptions{Tolerance: h.cfg.Tolerance, IgnoreAPIVersionMismatch: true})
	if err != nil {
		h.cfg.Logger.WarnContext(ctx, "finance: webhook refused", "err", err)
		msg := "invalid signature"
		if errors.Is(err, webhook.ErrTooOld) {
			msg = "signature timestamp outside the tolerance: stale or replayed"
		} else if !errors.Is(err, webhook.ErrNoValidSignature) && !errors.Is(err, webhook.ErrNotSigned) && !errors.Is(err, webhook.ErrInvalidHeader) {
			msg = "malformed event"
		}
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	orderID, cmd, ok := outcomeOf(ev, h.cfg.Clock.Now())
	if !ok {
		w.WriteHeader(http.StatusOK) // not an event finance needs
		return
	}
	err = h.m.Record(ctx, es.DeriveID("stripe-event/"+ev.ID, 0), orderID, cmd)
	switch {
	case isRuleBroken(err):
		// Not ours (another application's payment), or contradicting
		// what is recorded: delivering it again changes nothing.
		h.cfg.Logger.WarnContext(ctx, "finance: webhook event not applied", "event", ev.ID, "type", ev.Type, "err", err)
	case err != nil:
		h.cfg.Logger.ErrorContext(ctx, "finance: webhook event not recorded", "event", ev.ID, "err", err)
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// outcomeOf turns a Stripe event into a payment command on an order, if
// finance has a use for it.
func outcomeOf(ev stripe.Event, now time.Time) (orderID string, cmd PaymentCommand, ok bool) {
	switch ev.Type {
	case "payment_intent.succeeded", "payment_intent.payment_failed":
		var pi stripe.PaymentIntent
		if json.Unmarshal(ev.Data.Raw, &pi) != nil || pi.Metadata["order_id"] == "" {
			return "", nil, false
		}
		if ev.Type == "payment_intent.succeeded" {
			return pi.Metadata["order_id"], RecordCapture{GatewayID: pi.ID,
				Amount: money.Money{Amount: pi.AmountReceived, Currency: strings.ToUpper(string(pi.Currency))}, At: now}, true
		}
		d := declined(pi.LastPaymentError)
		return pi.Metadata["order_id"], RecordDecline{Code: d.Code, Reason: d.Reason, At: now}, true
	case "refund.updated", "refund.created":
		var re stripe.Refund
		if json.Unmarshal(ev.Data.Raw, &re) != nil || re.Metadata["order_id"] == "" || re.Metadata["refund_id"] == "" {
			return "", nil, false
		}
		switch re.Status {
		case stripe.RefundStatusSucceeded:
			return re.Metadata["order_id"], RecordRefund{RefundID: re.Metadata["refund_id"], GatewayRefundID: re.ID, At: now}, true
		case stripe.RefundStatusFailed, stripe.RefundStatusCanceled:
			return re.Metadata["order_id"], RecordRefundFailure{RefundID: re.Metadata["refund_id"], Reason: "the refund failed: " + string(re.FailureReason), At: now}, true
		}
	}
	return "", nil, false
}
