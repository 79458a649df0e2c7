package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/internal/natstest"
)

// The modules run as three services — the web process with concerts,
// carts and users; orders and reservations; finance and tickets — each a
// process of the built binary, sharing a fresh PostgreSQL schema and
// exchanging messages only through their own NATS server. Buyers race
// for a concert with fewer seats than they ask for, through the web
// process's API; every order ends completed or rejected (its lines back
// in the cart, by the carts module in the web process), and the store
// shows that no seat was sold twice and that no message took effect
// twice.
func TestModulesRunAsServicesThroughJetStream(t *testing.T) {
	pool := pgtest.Pool(t) // skips without PostgreSQL, fails with ES_REQUIRE_POSTGRES=1
	schema := pgtest.Schema(t, pool)
	natsURL := natstest.Start(t) // skips without nats-server, fails with ES_REQUIRE_NATS=1
	bin := buildBinary(t)

	common := []string{"serve", "-postgres", pgtest.DSN(), "-schema", schema, "-nats", natsURL, "-log", "WARN"}
	web := startProcess(t, bin, append(common, "-modules", "concerts,carts,users", "-addr", "127.0.0.1:0",
		"-mail", filepath.Join(t.TempDir(), "mail"))...)
	startProcess(t, bin, append(common, "-modules", "orders,reservations", "-addr", "", "-demo=false")...)
	startProcess(t, bin, append(common, "-modules", "finance,tickets", "-addr", "", "-demo=false",
		"-mail", filepath.Join(t.TempDir(), "mail"))...)

	// The demo organizer announces a concert with 20 seats; 12 buyers
	// ask for 2 each, so 2 orders find the seats sold out.
	const buyers, seats, perOrder = 12, 20, 2
	org := newAPIClient(t, web.url)
	if err := org.logIn("olga@ticketing.example", demoPassword); err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	if err := org.call("POST", "/api/concerts", map[string]any{
		"name": "Services Night", "artist": "Kwiat Jabłoni", "venue": "Torwar, Warsaw",
		"startsAt":    time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Hour).Format(time.RFC3339),
		"ticketTypes": []map[string]any{{"name": "Seat", "price": map[string]any{"amount": 25000, "currency": "PLN"}}},
		"capacity":    map[string]int{"Seat": seats},
	}, http.StatusCreated, &created); err != nil {
		t.Fatal(err)
	}

	type outcome struct {
		buyer   *apiClient
		orderID string
		status  string
		tickets int
	}
	outcomes := make([]outcome, buyers)
	var wg sync.WaitGroup
	errs := make([]error, buyers)
	for i := range buyers {
		outcomes[i].buyer = newAPIClient(t, web.url)
		wg.Go(func() { errs[i] = outcomes[i].buyer.register(i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// A log-in finds the account in the users' read model, a moment
	// after the registration; until then it would count as a failed
	// log-in, and the web process limits those.
	admin := newAPIClient(t, web.url)
	if err := admin.logIn("admin@ticketing.example", demoPassword); err != nil {
		t.Fatal(err)
	}
	if err := poll(func() (bool, error) {
		var list []struct{ Email string }
		err := admin.call("GET", "/api/users", nil, http.StatusOK, &list)
		n := 0
		for _, a := range list {
			if strings.HasSuffix(a.Email, "@services.example") {
				n++
			}
		}
		return n == buyers, err
	}); err != nil {
		t.Fatal(err)
	}
	for i, o := range outcomes {
		if err := o.buyer.logIn(buyerEmail(i), buyerPassword); err != nil {
			t.Fatal(err)
		}
	}
	for i := range buyers {
		wg.Go(func() {
			c := outcomes[i].buyer
			orderID, err := c.buy(i, created.ID, perOrder)
			if err != nil {
				errs[i] = fmt.Errorf("buyer %d: %w", i, err)
				return
			}
			outcomes[i].orderID = orderID
			o, err := c.awaitOrder(orderID)
			outcomes[i].status, outcomes[i].tickets = o.Status, len(o.TicketIDs)
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("%v\n%s", err, web.output())
	}

	completed, rejected := 0, 0
	for i, o := range outcomes {
		switch o.status {
		case string(orders.Completed):
			completed++
			if o.tickets != perOrder {
				t.Errorf("buyer %d: order %s completed with %d tickets, want %d", i, o.orderID, o.tickets, perOrder)
			}
		case string(orders.Rejected):
			rejected++
			// The carts module, in the web process, put the lines back.
			if err := o.buyer.awaitCartItems(); err != nil {
				t.Errorf("buyer %d: %v", i, err)
			}
		default:
			t.Errorf("buyer %d: order %s ended %s", i, o.orderID, o.status)
		}
	}
	if completed != seats/perOrder || rejected != buyers-seats/perOrder {
		t.Errorf("%d orders completed and %d rejected, want %d and %d", completed, rejected, seats/perOrder, buyers-seats/perOrder)
	}
	results := map[string]string{}
	for _, o := range outcomes {
		results[o.orderID] = o.status
	}
	checkStore(t, schema, created.ID, seats, results)
}

// checkStore checks, from the event store, that the concert's inventory
// has every seat sold once (no oversell), that each order's stream
// records its outcome once, and that no message took effect twice: a
// process or command handler that reacted to one message twice would
// have appended twice to a stream with that message as the cause.
func checkStore(t *testing.T, schema, concertID string, seats int, results map[string]string) {
	t.Helper()
	ctx := context.Background()
	store, err := postgres.New(ctx, pgtest.Pool(t), postgres.Config{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := app.NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	inv, _, err := es.NewCommandHandler(store, reg, reservations.Decider(), es.HandlerConfig{}).Load(ctx, reservations.Stream(concertID))
	if err != nil {
		t.Fatal(err)
	}
	if inv.Reserved["Seat"] != seats || inv.Capacity["Seat"] != seats {
		t.Errorf("inventory: %d of %d seats reserved, want all", inv.Reserved["Seat"], inv.Capacity["Seat"])
	}
	outcomes := map[string][]string{} // order stream -> the outcome events, in order
	// causes[stream][causation] are the versions of the events a
	// message caused in a stream.
	causes := map[string]map[string][]int64{}
	for e, err := range store.ReadAll(ctx, es.AllQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Type == "orders.OrderCompleted" || e.Type == "orders.OrderRejected" {
			outcomes[e.StreamID] = append(outcomes[e.StreamID], e.Type)
		}
		c := e.Metadata.CausationID
		if c == "" {
			continue
		}
		if causes[e.StreamID] == nil {
			causes[e.StreamID] = map[string][]int64{}
		}
		causes[e.StreamID][c] = append(causes[e.StreamID][c], e.Version)
	}
	for orderID, status := range results {
		want := []string{"orders.OrderCompleted"}
		if status == string(orders.Rejected) {
			want = []string{"orders.OrderRejected"}
		}
		if got := outcomes[orders.Stream(orderID)]; !slices.Equal(got, want) {
			t.Errorf("order %s (%s): outcome events %v, want %v", orderID, status, got, want)
		}
	}
	n := 0
	for _, byCause := range causes {
		n += len(byCause)
	}
	t.Logf("%d streams, %d messages that caused events in them", len(causes), n)
	for stream, byCause := range causes {
		for cause, versions := range byCause {
			for i := 1; i < len(versions); i++ {
				if versions[i] != versions[i-1]+1 {
					t.Errorf("stream %s: message %s caused the events at versions %v: it took effect twice", stream, cause, versions)
					break
				}
			}
		}
	}
}

// buildBinary builds the ticketing command into a temporary folder.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ticketing")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a ticketing process the test started.
type process struct {
	cmd  *exec.Cmd
	url  string // the web process's, or ""
	out  *lockedBuffer
	done chan struct{}
}

func (p *process) output() string { return p.out.String() }

// startProcess starts the binary with args and waits until it serves
// HTTP or, without -addr, runs its modules. When t ends it is stopped
// with SIGTERM, as an operator would, and must exit cleanly.
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), out: &lockedBuffer{}, done: make(chan struct{})}
	dieWithParent(p.cmd)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.out, line)
			if url, ok := strings.CutPrefix(line, "ticketing is at "); ok {
				ready <- strings.Fields(url)[0]
			} else if strings.HasPrefix(line, "no HTTP:") {
				ready <- ""
			}
		}
		_ = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("%s did not stop within a minute of SIGTERM:\n%s", strings.Join(args, " "), p.output())
			return
		}
		if !p.cmd.ProcessState.Success() {
			t.Errorf("%s: %v\n%s", strings.Join(args, " "), p.cmd.ProcessState, p.output())
		}
	})
	select {
	case p.url = <-ready:
	case <-p.done:
		t.Fatalf("%s ended: %v\n%s", strings.Join(args, " "), p.cmd.ProcessState, p.output())
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s did not start:\n%s", strings.Join(args, " "), p.output())
	}
	return p
}

// apiClient is a user of the JSON API, with its session cookie.
type apiClient struct {
	t   *testing.T
	url string
	c   *http.Client
}

func newAPIClient(t *testing.T, url string) *apiClient {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &apiClient{t: t, url: url, c: &http.Client{Jar: jar, Timeout: time.Minute}}
}

// call sends body as JSON and decodes the answer into out (unless nil),
// or fails unless the status is want.
func (c *apiClient) call(method, path string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.url+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *apiClient) logIn(email, password string) error {
	return c.call("POST", "/api/session", map[string]string{"email": email, "password": password}, http.StatusOK, nil)
}

func buyerEmail(i int) string { return fmt.Sprintf("buyer-%d@services.example", i) }

const buyerPassword = "correct horse battery staple"

// register registers buyer i.
func (c *apiClient) register(i int) error {
	return c.call("POST", "/api/users", map[string]string{"email": buyerEmail(i), "name": fmt.Sprintf("Buyer %d", i), "password": buyerPassword},
		http.StatusCreated, nil)
}

// buy fills the cart of buyer i, logged in, and checks out; it returns
// the order's ID.
func (c *apiClient) buy(i int, concertID string, quantity int) (string, error) {
	email := buyerEmail(i)
	for _, s := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/api/billing", map[string]string{"name": fmt.Sprintf("Buyer %d", i), "address": "Długa 1, Warszawa", "email": email}},
		{"POST", "/api/cart/items", map[string]any{"concertId": concertID, "ticketType": "Seat", "quantity": quantity}},
		{"PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": email}},
	} {
		if err := c.call(s.method, s.path, s.body, http.StatusNoContent, nil); err != nil {
			return "", err
		}
	}
	var out struct{ Orders map[string]string }
	if err := c.call("POST", "/api/cart/checkout", nil, http.StatusAccepted, &out); err != nil {
		return "", err
	}
	return out.Orders[concertID], nil
}

// orderOut is what GET /api/orders/{id} says.
type orderOut struct {
	Status    string
	TicketIDs []string
}

// awaitOrder polls the order until it is final.
func (c *apiClient) awaitOrder(orderID string) (orderOut, error) {
	var o orderOut
	err := poll(func() (bool, error) {
		o = orderOut{}
		if err := c.call("GET", "/api/orders/"+orderID, nil, http.StatusOK, &o); err != nil {
			return false, nil // not placed yet: the relay has not delivered PlaceOrder
		}
		return orders.Status(o.Status).Final(), nil
	})
	if err != nil {
		return o, fmt.Errorf("order %s, last %s: %w", orderID, o.Status, err)
	}
	return o, nil
}

// awaitCartItems polls the cart until it holds items again.
func (c *apiClient) awaitCartItems() error {
	return poll(func() (bool, error) {
		var cart struct{ Lines []any }
		if err := c.call("GET", "/api/cart", nil, http.StatusOK, &cart); err != nil {
			return false, err
		}
		return len(cart.Lines) > 0, nil
	})
}

// poll calls cond until it reports done or fails, for up to three
// minutes: a deadline for a broken test, not a measure of speed.
func poll(cond func() (bool, error)) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		done, err := cond()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("not done within 3 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serve names the modules it knows when given another, and refuses to
// run only some modules without JetStream and a shared store.
func TestServeChecksItsModules(t *testing.T) {
	o := testOptions(t)
	o.modules = "orders,billing"
	if err := serve(context.Background(), o, io.Discard, nil); !errors.Is(err, app.ErrUnknownModule) ||
		!strings.Contains(err.Error(), "finance") {
		t.Errorf("-modules orders,billing: %v, want ErrUnknownModule naming the modules", err)
	}
	o.modules = "orders"
	if err := serve(context.Background(), o, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "-nats") {
		t.Errorf("-modules orders without -nats: %v", err)
	}
	o.nats = "nats://127.0.0.1:4222"
	if err := serve(context.Background(), o, io.Discard, nil); err == nil || !strings.Contains(err.Error(), "-postgres") {
		t.Errorf("-modules orders without -postgres: %v", err)
	}
}
