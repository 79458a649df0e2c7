package finance_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/finance"
)

// TestAPaymentSurvivesAProcessKilledAfterStripeCharged runs the module in
// a child process on a SQLite file, with the Stripe gateway. The child is
// killed (SIGKILL) once Stripe has confirmed the PaymentIntent, before the
// answer reaches it: the charge happened, its outcome is stored nowhere.
// A second child, on the same file, gets the request again from the
// outbox, sends the same idempotency keys, receives Stripe's first answers
// again, and records the payment: captured once, announced once.
func TestAPaymentSurvivesAProcessKilledAfterStripeCharged(t *testing.T) {
	p := newStripeProxy(t)
	confirmed := make(chan struct{})
	var once sync.Once
	p.mu.Lock()
	p.answered = func(r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/confirm") {
			once.Do(func() {
				close(confirmed)
				<-r.Context().Done() // the answer never leaves: the child is killed first
			})
		}
	}
	p.mu.Unlock()

	ctx := context.Background()
	path := t.TempDir() + "/events.db"
	store, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry(t)
	m, err := es.NewMessage(reg, "p1", request())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{m}}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	first := paymentChild(t, path, p.srv.URL)
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-confirmed:
	case <-time.After(time.Minute):
		t.Fatal("the first child never confirmed the payment")
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()

	second := paymentChild(t, path, p.srv.URL)
	if out, err := second.CombinedOutput(); err != nil {
		t.Fatalf("second child: %v\n%s", err, out)
	}

	store, err = sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var types []string
	for e, err := range store.ReadStream(ctx, finance.PaymentStream("o1"), es.StreamQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, e.Type)
	}
	if strings.Join(types, " ") != "finance.PaymentRequested finance.PaymentCaptured" {
		t.Errorf("payment events %v; want requested, captured", types)
	}
	var announced int
	if err := store.DB().QueryRowContext(ctx, `SELECT count(*) FROM es_outbox WHERE type = 'finance.PaymentSucceeded'`).Scan(&announced); err != nil {
		t.Fatal(err)
	}
	if announced != 1 {
		t.Errorf("PaymentSucceeded enqueued %d times, want once", announced)
	}
	keys := map[string]int{}
	for _, c := range p.calls() {
		keys[c.IdempotencyKey]++
	}
	if keys["payment-p1-create"] != 2 || keys["payment-p1-confirm"] != 2 || p.reachedStripeMock() != 2 {
		t.Errorf("keys %v, %d requests reached Stripe; want both calls made twice with their keys, answered once", keys, p.reachedStripeMock())
	}
}

// paymentChild returns a command that runs TestPaymentChild in a child
// process on the SQLite file path, with Stripe at stripeURL.
func paymentChild(t *testing.T, path, stripeURL string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestPaymentChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FINANCE_CHILD_DB="+path, "FINANCE_CHILD_STRIPE="+stripeURL)
	// The child exits when this process dies and closes the pipe.
	if _, err := cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestPaymentChild is the child process of
// TestAPaymentSurvivesAProcessKilledAfterStripeCharged: it relays the
// outbox of the SQLite file to the module until order o1's payment
// succeeds.
func TestPaymentChild(t *testing.T) {
	path := os.Getenv("FINANCE_CHILD_DB")
	if path == "" {
		t.Skip("run by TestAPaymentSurvivesAProcessKilledAfterStripeCharged")
	}
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
		}
		os.Exit(3) // the parent is gone
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gw, err := finance.NewStripeGateway(finance.StripeConfig{Key: "sk_test_123", URL: os.Getenv("FINANCE_CHILD_STRIPE"), DefaultPaymentMethod: "pm_card_visa"})
	if err != nil {
		t.Fatal(err)
	}
	m, err := finance.New(finance.Config{Store: store, Registry: registry(t), Gateway: gw})
	if err != nil {
		t.Fatal(err)
	}
	bus := es.NewBus()
	m.Subscribe(bus)
	relay := es.NewRelay(store, bus, es.RelayConfig{PollInterval: 5 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	for {
		if p, err := m.Payment(ctx, "o1"); err == nil && p.Status == finance.Succeeded {
			cancel()
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the payment did not succeed")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
