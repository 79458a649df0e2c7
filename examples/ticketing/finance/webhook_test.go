package finance_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/finance"
)

const secret = "whsec_test_secret"

// webhookRig is a module on a memory store, a payment of order o1
// requested (the gateway's synchronous answer has not come), and its
// webhook handler.
type webhookRig struct {
	store *memory.Store
	mod   *finance.Module
	h     http.Handler
}

func newWebhookRig(t *testing.T) *webhookRig {
	t.Helper()
	store := memory.New(memory.Config{})
	reg := registry(t)
	mod, err := finance.New(finance.Config{Store: store, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := mod.Record(context.Background(), "request-1", "o1", finance.Request{RequestPayment: request(), At: t0, GiveUpAt: giveUp}); err != nil {
		t.Fatal(err)
	}
	h, err := finance.NewWebhookHandler(mod, finance.WebhookConfig{Secret: secret, MaxBody: 4096})
	if err != nil {
		t.Fatal(err)
	}
	return &webhookRig{store: store, mod: mod, h: h}
}

// event is a Stripe event as Stripe posts it.
func event(id, typ string, object map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2023-10-16",
		"created": t0.Unix(), "data": map[string]any{"object": object}})
	return b
}

func succeededIntent() map[string]any {
	return map[string]any{"id": "pi_1", "object": "payment_intent", "amount": 50000, "amount_received": 50000, "currency": "pln",
		"status": "succeeded", "metadata": map[string]string{"payment_id": "p1", "order_id": "o1"}}
}

// post signs payload at signedAt with secret, as Stripe does, and posts it.
func (r *webhookRig) post(t *testing.T, payload []byte, secret string, signedAt time.Time) *httptest.ResponseRecorder {
	t.Helper()
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: signedAt})
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", strings.NewReader(string(payload)))
	req.Header.Set("Stripe-Signature", sp.Header)
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w
}

// written counts the events and outbox messages in the store.
func (r *webhookRig) written(t *testing.T) (events int, messages int64) {
	t.Helper()
	all, err := es.Collect(r.store.ReadAll(context.Background(), es.AllQuery{}))
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.store.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(all), n
}

func TestASucceededIntentWebhookCapturesThePaymentOnce(t *testing.T) {
	r := newWebhookRig(t)
	ev0, msg0 := r.written(t)
	body := event("evt_1", "payment_intent.succeeded", succeededIntent())
	for range 2 { // Stripe delivers at least once
		if w := r.post(t, body, secret, time.Now()); w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	// The synchronous answer arrives last, and finds the payment captured.
	if err := r.mod.Record(context.Background(), "sync-answer", "o1", finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}); err != nil {
		t.Fatal(err)
	}
	if ev, msg := r.written(t); ev != ev0+1 || msg != msg0+2 {
		t.Errorf("%d events and %d messages added; want the capture, PaymentSucceeded and InvoiceDue", ev-ev0, msg-msg0)
	}
	p, _ := r.mod.Payment(context.Background(), "o1")
	if p.Status != finance.Succeeded || p.GatewayID != "pi_1" {
		t.Errorf("payment %+v; want succeeded", p)
	}
}

func TestAPaymentFailedWebhookFailsThePaymentWithItsReason(t *testing.T) {
	r := newWebhookRig(t)
	pi := succeededIntent()
	pi["status"] = "requires_payment_method"
	pi["last_payment_error"] = map[string]any{"type": "card_error", "code": "card_declined", "decline_code": "stolen_card", "message": "Your card was declined."}
	if w := r.post(t, event("evt_2", "payment_intent.payment_failed", pi), secret, time.Now()); w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	p, _ := r.mod.Payment(context.Background(), "o1")
	if p.Status != finance.Failed {
		t.Errorf("payment %+v; want failed", p)
	}
}

func TestWebhooksThatCannotBeTrustedAreRefusedAndWriteNothing(t *testing.T) {
	body := event("evt_1", "payment_intent.succeeded", succeededIntent())
	for _, tc := range []struct {
		name   string
		post   func(r *webhookRig, t *testing.T) *httptest.ResponseRecorder
		status int
	}{
		{"a wrong secret", func(r *webhookRig, t *testing.T) *httptest.ResponseRecorder {
			return r.post(t, body, "whsec_someone_else", time.Now())
		}, http.StatusBadRequest},
		{"a stale timestamp (a replay)", func(r *webhookRig, t *testing.T) *httptest.ResponseRecorder {
			return r.post(t, body, secret, time.Now().Add(-10*time.Minute))
		}, http.StatusBadRequest},
		{"a tampered body", func(r *webhookRig, t *testing.T) *httptest.ResponseRecorder {
			sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret})
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Replace(string(body), "50000", "1", 1)))
			req.Header.Set("Stripe-Signature", sp.Header)
			w := httptest.NewRecorder()
			r.h.ServeHTTP(w, req)
			return w
		}, http.StatusBadRequest},
		{"no signature", func(r *webhookRig, t *testing.T) *httptest.ResponseRecorder {
			w := httptest.NewRecorder()
			r.h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body))))
			return w
		}, http.StatusBadRequest},
		{"an oversized body", func(r *webhookRig, t *testing.T) *httptest.ResponseRecorder {
			pi := succeededIntent()
			pi["description"] = strings.Repeat("x", 5000)
			return r.post(t, event("evt_big", "payment_intent.succeeded", pi), secret, time.Now())
		}, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newWebhookRig(t)
			ev0, msg0 := r.written(t)
			w := tc.post(r, t)
			if w.Code != tc.status {
				t.Errorf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.status)
			}
			if ev, msg := r.written(t); ev != ev0 || msg != msg0 {
				t.Errorf("%d events and %d messages written", ev-ev0, msg-msg0)
			}
		})
	}
}

func TestWebhooksFinanceHasNoUseForAreAcknowledged(t *testing.T) {
	r := newWebhookRig(t)
	ev0, _ := r.written(t)
	for _, body := range [][]byte{
		event("evt_3", "customer.created", map[string]any{"id": "cus_1", "object": "customer"}),
		event("evt_4", "payment_intent.succeeded", map[string]any{"id": "pi_x", "object": "payment_intent", "metadata": map[string]string{}}),
		event("evt_5", "payment_intent.succeeded", map[string]any{"id": "pi_y", "object": "payment_intent", "amount_received": 1, "currency": "pln",
			"metadata": map[string]string{"order_id": "unknown"}}),
	} {
		if w := r.post(t, body, secret, time.Now()); w.Code != http.StatusOK {
			t.Errorf("status %d: %s", w.Code, w.Body)
		}
	}
	if ev, _ := r.written(t); ev != ev0 {
		t.Errorf("%d events written", ev-ev0)
	}
}

func TestARefundWebhookCompletesAPendingRefund(t *testing.T) {
	r := newWebhookRig(t)
	ctx := context.Background()
	if err := r.mod.Record(ctx, "c1", "o1", finance.RecordCapture{GatewayID: "pi_1", Amount: pln(50000), At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := r.mod.Record(ctx, "c2", "o1", finance.RequestRefund{RefundID: "r1", Amount: pln(20000), At: t0}); err != nil {
		t.Fatal(err)
	}
	refund := map[string]any{"id": "re_1", "object": "refund", "amount": 20000, "currency": "pln", "status": "succeeded",
		"metadata": map[string]string{"refund_id": "r1", "order_id": "o1", "payment_id": "p1"}}
	for range 2 {
		if w := r.post(t, event("evt_6", "refund.updated", refund), secret, time.Now()); w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	p, _ := r.mod.Payment(ctx, "o1")
	if p.Refunded != pln(20000) || p.Refunds["r1"].Status != "completed" {
		t.Errorf("payment %+v; want 200.00 PLN refunded", p)
	}
}
