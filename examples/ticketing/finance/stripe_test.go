package finance_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/finance"
)

// stripeMock is the package's stripe-mock, started by the first test
// that needs it and stopped by TestMain.
var stripeMock struct {
	once sync.Once
	url  string
	err  error
	stop func()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stripeMock.stop != nil {
		stripeMock.stop()
	}
	os.Exit(code)
}

// startStripeMock returns the base URL of stripe-mock, the version
// go.mod's tool directive pins, started on free ports once it answers.
func startStripeMock(t *testing.T) string {
	t.Helper()
	stripeMock.once.Do(func() { stripeMock.url, stripeMock.stop, stripeMock.err = runStripeMock() })
	if stripeMock.err != nil {
		t.Fatal(stripeMock.err)
	}
	return stripeMock.url
}

func runStripeMock() (string, func(), error) {
	// "go tool -n" builds the tool (or finds it in the build cache) and
	// prints its path, so the test runs the binary itself and can stop it.
	out, err := exec.Command("go", "tool", "-n", "stripe-mock").Output()
	if err != nil {
		return "", nil, fmt.Errorf("building stripe-mock (go tool -n stripe-mock): %w", err)
	}
	cmd := exec.Command(strings.TrimSpace(string(out)), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`Listening for HTTP at address: (\S+)`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		stop()
		return "", nil, errors.New("stripe-mock did not say where it listens")
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/balance", nil)
		req.SetBasicAuth("sk_test_123", "")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, stop, nil
			}
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("stripe-mock does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call is a request that reached Stripe.
type call struct {
	Method, Path, IdempotencyKey string
	Form                         url.Values
}

// stripeProxy stands between the gateway and stripe-mock and records
// every request with its Idempotency-Key header. stripe-mock keeps no
// state: it answers every call from its fixtures. So the proxy adds the
// little state these tests need, as Stripe has it: a request whose
// idempotency key was seen gets the first response again, without
// reaching stripe-mock, and confirming a PaymentIntent answers with the
// intent that was created, succeeded (a good card in test mode).
type stripeProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []call
	// answer, when set, may answer a request instead of stripe-mock.
	answer func(w http.ResponseWriter, r *http.Request) bool
	// answered, when set, is called when stripe-mock has answered, before
	// the answer is passed on.
	answered func(r *http.Request)
	replies  map[string][]byte         // by idempotency key
	created  map[string]map[string]any // PaymentIntents by ID
	upstream int                       // requests that reached stripe-mock
}

func newStripeProxy(t *testing.T) *stripeProxy {
	t.Helper()
	target, err := url.Parse(startStripeMock(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &stripeProxy{replies: map[string][]byte{}, created: map[string]map[string]any{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		key := r.Header.Get("Idempotency-Key")
		p.mu.Lock()
		p.got = append(p.got, call{Method: r.Method, Path: r.URL.Path, IdempotencyKey: key, Form: form})
		answer, replay := p.answer, p.replies[key]
		p.mu.Unlock()
		if answer != nil && answer(w, r) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if replay != nil {
			w.Header().Set("Idempotent-Replayed", "true")
			_, _ = w.Write(replay)
			return
		}
		status, reply := p.forward(t, target, r, body)
		p.mu.Lock()
		if status == http.StatusOK && key != "" {
			p.replies[key] = reply
		}
		answered := p.answered
		p.mu.Unlock()
		if answered != nil {
			answered(r)
		}
		w.WriteHeader(status)
		_, _ = w.Write(reply)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// forward sends a request to stripe-mock and returns its answer, with
// the state stripe-mock lacks.
func (p *stripeProxy) forward(t *testing.T, target *url.URL, r *http.Request, body []byte) (int, []byte) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target.String()+r.URL.Path, strings.NewReader(string(body)))
	if err != nil {
		t.Error(err)
		return http.StatusInternalServerError, nil
	}
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return http.StatusBadGateway, nil
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream++
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(r.URL.Path, "/v1/payment_intents") {
		return resp.StatusCode, reply
	}
	var pi map[string]any
	if json.Unmarshal(reply, &pi) != nil {
		return resp.StatusCode, reply
	}
	if r.URL.Path == "/v1/payment_intents" {
		p.created[pi["id"].(string)] = pi
	} else if id, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/v1/payment_intents/"), "/confirm"); ok && p.created[id] != nil {
		pi = p.created[id]
		pi["status"], pi["amount_received"] = "succeeded", pi["amount"]
	}
	reply, _ = json.Marshal(pi)
	return resp.StatusCode, reply
}

// reachedStripeMock returns how many requests were not replays.
func (p *stripeProxy) reachedStripeMock() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstream
}

func (p *stripeProxy) calls() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]call(nil), p.got...)
}

func (p *stripeProxy) setAnswer(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answer = f
}

func stripeGateway(t *testing.T, p *stripeProxy, timeout time.Duration) *finance.StripeGateway {
	t.Helper()
	g, err := finance.NewStripeGateway(finance.StripeConfig{Key: "sk_test_123", URL: p.srv.URL, Timeout: timeout, DefaultPaymentMethod: "pm_card_visa"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func charge() finance.Charge {
	return finance.Charge{IdempotencyKey: finance.ChargeKey("p1"), PaymentID: "p1", OrderID: "o1", UserID: "ola", Amount: pln(50000), Description: "order o1"}
}

func stripeError(status int, typ, code, declineCode, msg string) func(w http.ResponseWriter, r *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "code": code, "decline_code": declineCode, "message": msg}})
		return true
	}
}

func TestStripeChargeCreatesAndConfirmsAPaymentIntentUnderTheCommandsKey(t *testing.T) {
	p := newStripeProxy(t)
	g := stripeGateway(t, p, 0)
	res, err := g.Charge(context.Background(), charge())
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != finance.ChargeCaptured || !strings.HasPrefix(res.GatewayID, "pi_") || res.Amount != pln(50000) {
		t.Errorf("result %+v; want a captured PaymentIntent of 500.00 PLN", res)
	}
	// A retried charge (after a timeout, or a crash before its outcome
	// was stored) sends the same keys: Stripe answers with the first
	// outcome and charges nothing more.
	again, err := g.Charge(context.Background(), charge())
	if err != nil {
		t.Fatal(err)
	}
	if again != res || p.reachedStripeMock() != 2 {
		t.Errorf("the retried charge returned %+v after %d calls to Stripe; want the first outcome, %+v, after 2", again, p.reachedStripeMock(), res)
	}
	calls := p.calls()
	want := []struct{ path, key string }{
		{"/v1/payment_intents", "payment-p1-create"}, {"/v1/payment_intents/" + res.GatewayID + "/confirm", "payment-p1-confirm"},
		{"/v1/payment_intents", "payment-p1-create"}, {"/v1/payment_intents/" + res.GatewayID + "/confirm", "payment-p1-confirm"},
	}
	if len(calls) != len(want) {
		t.Fatalf("calls %+v; want %+v", calls, want)
	}
	for i, w := range want {
		if calls[i].Method != http.MethodPost || calls[i].Path != w.path || calls[i].IdempotencyKey != w.key {
			t.Errorf("call %d: %s %s key %q; want POST %s key %q", i, calls[i].Method, calls[i].Path, calls[i].IdempotencyKey, w.path, w.key)
		}
	}
	if f := calls[0].Form; f.Get("amount") != "50000" || f.Get("currency") != "pln" || f.Get("metadata[order_id]") != "o1" || f.Get("metadata[payment_id]") != "p1" {
		t.Errorf("create form %v; want 50000 pln with the order and payment in the metadata", f)
	}
}

func TestStripeRefundCarriesTheRefundsKey(t *testing.T) {
	p := newStripeProxy(t)
	g := stripeGateway(t, p, 0)
	res, err := g.Refund(context.Background(), finance.RefundRequest{IdempotencyKey: finance.RefundKey("r1"), RefundID: "r1",
		PaymentID: "p1", OrderID: "o1", GatewayID: "pi_123", Amount: pln(20000)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.GatewayRefundID, "re_") || res.Pending {
		t.Errorf("result %+v; want a completed refund", res)
	}
	calls := p.calls()
	if len(calls) != 1 || calls[0].Path != "/v1/refunds" || calls[0].IdempotencyKey != "refund-r1" ||
		calls[0].Form.Get("payment_intent") != "pi_123" || calls[0].Form.Get("amount") != "20000" || calls[0].Form.Get("metadata[refund_id]") != "r1" {
		t.Errorf("calls %+v; want one POST /v1/refunds of 20000 on pi_123 with key refund-r1", calls)
	}
}

func TestStripeCardErrorsAreDeclinesWithTheirReason(t *testing.T) {
	p := newStripeProxy(t)
	p.setAnswer(func(w http.ResponseWriter, r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/confirm") &&
			stripeError(http.StatusPaymentRequired, "card_error", "card_declined", "insufficient_funds", "Your card has insufficient funds.")(w, r)
	})
	_, err := stripeGateway(t, p, 0).Charge(context.Background(), charge())
	var d *finance.DeclinedError
	if !errors.As(err, &d) || d.Code != "insufficient_funds" || d.Reason != "Your card has insufficient funds." {
		t.Errorf("error %v; want a decline for insufficient funds", err)
	}
}

func TestStripeServerErrorsAreTransient(t *testing.T) {
	p := newStripeProxy(t)
	p.setAnswer(stripeError(http.StatusInternalServerError, "api_error", "", "", "Something went wrong on Stripe's end."))
	_, err := stripeGateway(t, p, 0).Charge(context.Background(), charge())
	if !errors.Is(err, finance.ErrGatewayUnavailable) {
		t.Errorf("error %v; want ErrGatewayUnavailable", err)
	}
}

func TestStripeTimeoutsAreTransient(t *testing.T) {
	p := newStripeProxy(t)
	p.setAnswer(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done() // Stripe does not answer
		return true
	})
	_, err := stripeGateway(t, p, 50*time.Millisecond).Charge(context.Background(), charge())
	if !errors.Is(err, finance.ErrGatewayUnavailable) {
		t.Errorf("error %v; want ErrGatewayUnavailable", err)
	}
}

func TestStripeInvalidRequestsAreNotTransient(t *testing.T) {
	p := newStripeProxy(t)
	p.setAnswer(stripeError(http.StatusBadRequest, "invalid_request_error", "parameter_invalid_integer", "", "Invalid integer"))
	_, err := stripeGateway(t, p, 0).Charge(context.Background(), charge())
	var d *finance.DeclinedError
	if err == nil || errors.Is(err, finance.ErrGatewayUnavailable) || errors.As(err, &d) {
		t.Errorf("error %v; want a permanent error that is not a decline", err)
	}
}

// TestAPaymentThroughStripeSurvivesACrashWithoutChargingTwice runs a
// payment through the outbox against stripe-mock, with a crash injected
// after Stripe answered and before the outcome was stored: the relay
// delivers the request again, the gateway sends the same idempotency keys,
// and the payment succeeds once.
func TestAPaymentThroughStripeSurvivesACrashWithoutChargingTwice(t *testing.T) {
	p := newStripeProxy(t)
	var crashing *crashingStore
	r := newRig(t, withGateway(stripeGateway(t, p, 0)), withStore(func(o es.Outbox) es.Outbox {
		crashing = &crashingStore{Outbox: o, match: appendsType("finance.PaymentCaptured")}
		crashing.crashes.Store(1)
		return crashing
	}))
	r.send(t, "p1", request())
	waitFor(t, "the crashed attempt", func() bool { return crashing.crashes.Load() <= 0 })
	r.clock.Advance(time.Minute)
	waitFor(t, "the outcome", func() bool { return len(r.outcomes()) == 1 })
	if _, ok := r.outcomes()[0].(finance.PaymentSucceeded); !ok {
		t.Errorf("outcome %+v; want PaymentSucceeded", r.outcomes()[0])
	}
	keys := map[string]int{}
	for _, c := range p.calls() {
		keys[c.IdempotencyKey]++
	}
	if len(keys) != 2 || keys["payment-p1-create"] != 2 || keys["payment-p1-confirm"] != 2 || p.reachedStripeMock() != 2 {
		t.Errorf("idempotency keys sent %v, %d requests not replayed; want each of payment-p1-create and -confirm twice, the second time replayed",
			keys, p.reachedStripeMock())
	}
	if pay := r.payment(t, "o1"); pay.Status != finance.Succeeded || !strings.HasPrefix(pay.GatewayID, "pi_") {
		t.Errorf("payment %+v; want succeeded with a PaymentIntent", pay)
	}
}
