package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// The purchase crash test runs the app's background work (the relay, the
// order, sales and expiry processes, the seat adapter, and the finance and
// tickets modules with the fake gateway and a mail folder) in a child
// process, the test binary re-executed
// as TestHelperPurchaseProcess, and kills it with SIGKILL again and again
// while the test, standing for the web front, checks out 500 carts at
// once. A child dies either by its own hand right after a delivery took
// effect and before the relay recorded it (the window where a message is
// delivered twice), or by the test's hand once it delivered a chosen
// number of messages. Kills wait for progress, not for time, so the test
// holds on slow machines and fast ones.

// purchaseChildEnv carries a purchaseChild, as JSON, to the helper.
const purchaseChildEnv = "ES_TICKETING_PURCHASE_CHILD"

type purchaseChild struct {
	DB       string
	Mail     string // the folder tickets are mailed to
	Attempts string // every delivery attempt is logged here, one message ID a line
	KillAt   int64  // the delivery after which the child kills itself (0: never)
	Buyers   int
}

// crashBuyer returns the ID of the test's ith buyer: one in seven has a
// card the gateway declines, and says so in its ID.
func crashBuyer(i int) string {
	if i%7 == 0 {
		return fmt.Sprintf("fan-%03d-declined", i)
	}
	return fmt.Sprintf("fan-%03d", i)
}

// deliveryLog is the child's relay observer: it logs every delivery
// attempt, and kills the process after the KillAt-th. It is told of a
// delivery after the bus's handlers committed its effects and before the
// relay records it: a kill there makes the relay deliver the message
// again.
type deliveryLog struct {
	mu        sync.Mutex
	log       *os.File
	delivered atomic.Int64
	killAt    int64
}

func (l *deliveryLog) ObserveDelivery(m es.Message, _ time.Duration, _ error) {
	l.mu.Lock()
	_, err := l.log.Write([]byte(m.ID + "\n"))
	l.mu.Unlock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "attempts log:", err)
		os.Exit(2)
	}
	if n := l.delivered.Add(1); l.killAt > 0 && n == l.killAt {
		p, _ := os.FindProcess(os.Getpid())
		_ = p.Kill()
		time.Sleep(time.Hour) // SIGKILL arrives; nothing else may happen meanwhile
	}
}

func (*deliveryLog) ObserveBacklog(int64) {}

// TestHelperPurchaseProcess is not a test: run in a child process with
// purchaseChildEnv set, it runs the app until killed.
func TestHelperPurchaseProcess(t *testing.T) {
	raw := os.Getenv(purchaseChildEnv)
	if raw == "" {
		t.Skip("helper process for TestPurchasesSurviveCrashes")
	}
	go func() { // die with the parent: its end closes our standard input
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(3)
	}()
	var cfg purchaseChild
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "config:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := sqlite.Open(ctx, cfg.DB, sqlite.Config{Synchronous: sqlite.SyncNormal, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	log, err := os.OpenFile(cfg.Attempts, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "attempts log:", err)
		os.Exit(2)
	}
	gateway := finance.NewFakeGateway()
	for i := range cfg.Buyers {
		if u := crashBuyer(i); strings.HasSuffix(u, "-declined") {
			gateway.DeclineUser(u, "card_declined")
		}
	}
	folder, err := mailer.NewFolder(cfg.Mail, "tickets@ticketing.example")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mailer:", err)
		os.Exit(2)
	}
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Hold: time.Hour, RelayPollInterval: 5 * time.Millisecond,
		RelayWorkers: 2, Payments: gateway, Mailer: folder, RelayObserver: &deliveryLog{log: log, killAt: cfg.KillAt}, Logger: logger})
	if err != nil {
		fmt.Fprintln(os.Stderr, "app:", err)
		os.Exit(2)
	}
	err = a.RunProcesses(ctx)
	fmt.Fprintln(os.Stderr, "run:", err)
	os.Exit(4) // Run returns only on an error: the ctx never ends
}

type runningChild struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan struct{}
}

func startPurchaseChild(t *testing.T, cfg purchaseChild) *runningChild {
	t.Helper()
	raw, _ := json.Marshal(cfg)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperPurchaseProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), purchaseChildEnv+"="+string(raw))
	if _, err := cmd.StdinPipe(); err != nil { // held open until Wait: only our death closes it early
		t.Fatal(err)
	}
	c := &runningChild{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// killWhen kills the child once ready reports true (asked every 10 ms),
// unless it killed itself first (reported by self). Either way it must
// have died of SIGKILL, not stopped on an error.
func (c *runningChild) killWhen(t *testing.T, ready func() bool) (self bool) {
	t.Helper()
	limit := time.Now().Add(3 * time.Minute) // against a hung child, not a test of speed
	for !self && (ready == nil || !ready()) {
		if time.Now().After(limit) {
			_ = c.cmd.Process.Kill()
			<-c.done
			t.Fatalf("child %d: its life did not end within 3 minutes: %s", c.cmd.Process.Pid, tail(c.stderr.String()))
		}
		select {
		case <-c.done:
			self = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	if !self {
		_ = c.cmd.Process.Kill()
	}
	<-c.done
	if ws, ok := c.cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Fatalf("child %d was not killed but ended with %v: %s", c.cmd.Process.Pid, c.cmd.ProcessState, c.stderr)
	}
	return self
}

func tail(s string) string {
	if len(s) > 3000 {
		return "..." + s[len(s)-3000:]
	}
	return s
}

func countLines(t *testing.T, path string) (total int64, distinct map[string]int) {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	distinct = map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		total++
		distinct[sc.Text()]++
	}
	return total, distinct
}

// TestPurchasesSurviveCrashes: 500 buyers check out at once, asking for
// 750 seats of 200 (so many are turned away, and one in seven has a card
// the fake gateway declines, which frees seats for others) while the
// process that runs the relay, the processes and the finance and tickets
// modules is killed again and again. At the end, from the event store:
// every order ended in exactly one final state; no order was charged
// twice (finance's payment streams); every seat is either free or held by
// exactly one completed order; the money captured minus the money
// refunded equals the value of the completed orders; and each completed
// order has one ticket per seat, the ones it was told of, and no other
// order has any (the tickets module's streams).
func TestPurchasesSurviveCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	const buyers, capacity, minKills = 500, 200, 16
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ticketing.db")
	store, err := sqlite.Open(ctx, path, sqlite.Config{Synchronous: sqlite.SyncNormal})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	// The front: commands only (it does not Run), as a web server would.
	front, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Hold: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := concert("c1", capacity)
	c.StartsAt = time.Now().AddDate(0, 3, 0) // the app runs on the system clock here
	if err := front.CreateConcert(ctx, es.NewID(), c); err != nil {
		t.Fatal(err)
	}
	attempts := filepath.Join(t.TempDir(), "attempts.log")
	mail := t.TempDir()

	// The buyers check out while the children live and die; the first
	// child starts with them.
	orderIDs := make([]string, buyers)
	users := make([]string, buyers)
	var checkedOut atomic.Int64
	checkouts := make(chan error, 1)
	go func() {
		var wg sync.WaitGroup
		errs := make(chan error, buyers)
		sem := make(chan struct{}, 16)
		for i := range buyers {
			users[i] = crashBuyer(i)
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				user := users[i]
				err := front.AddToCart(ctx, es.NewID(), user, "c1", "GA", 1+i%2)
				if err == nil {
					err = front.ChooseDelivery(ctx, es.NewID(), user, carts.Delivery{Method: carts.ByEmail, Email: user + "@example.com"})
				}
				if err == nil {
					var placed map[string]string
					placed, err = front.Checkout(ctx, es.NewID(), user)
					orderIDs[i] = placed["c1"]
				}
				if err != nil {
					errs <- fmt.Errorf("buyer %d: %w", i, err)
				}
				checkedOut.Add(1)
			})
		}
		wg.Wait()
		close(errs)
		checkouts <- errors.Join(func() (all []error) {
			for err := range errs {
				all = append(all, err)
			}
			return all
		}()...)
	}()

	allFinal := func() bool {
		if checkedOut.Load() < buyers {
			return false
		}
		for _, id := range orderIDs {
			o, err := front.Order(ctx, id)
			if errors.Is(err, orders.ErrNoOrder) || (err == nil && !o.Status.Final()) {
				return false
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return true
	}
	// The work left: the payments' deadlines, a quarter of an hour
	// ahead, are not.
	backlog := func() int64 { return due(t, store, time.Now()) }
	kills, selfKills := 0, 0
	for turn := 0; ; turn++ {
		done := kills >= minKills && checkedOut.Load() == buyers && allFinal() && backlog() == 0
		if done {
			break
		}
		from, _ := countLines(t, attempts)
		at := 40 + rand.Int64N(160) // about 2,600 deliveries in all: the kills spread over them
		cfg := purchaseChild{DB: path, Mail: mail, Attempts: attempts, Buyers: buyers}
		var ready func() bool
		if turn%2 == 0 {
			cfg.KillAt = at
		} else {
			ready = func() bool { n, _ := countLines(t, attempts); return n-from >= at }
		}
		if kills >= minKills {
			// Enough kills: let the child finish the work, then kill it.
			cfg.KillAt = 0
			ready = func() bool { return allFinal() && backlog() == 0 }
		}
		born := time.Now()
		if startPurchaseChild(t, cfg).killWhen(t, ready) {
			selfKills++
		}
		kills++
		n, _ := countLines(t, attempts)
		t.Logf("kill %d (%s) after %v: %d deliveries in this life, %d checked out, backlog %d",
			kills, map[bool]string{true: "self", false: "from outside"}[cfg.KillAt > 0], time.Since(born).Round(time.Millisecond),
			n-from, checkedOut.Load(), backlog())
	}
	if err := <-checkouts; err != nil {
		t.Fatal(err)
	}
	total, distinct := countLines(t, attempts)
	t.Logf("%d kills (%d by the child itself, right after a delivery took effect); %d deliveries of %d messages (%d redelivered)",
		kills, selfKills, total, len(distinct), total-int64(len(distinct)))
	if total == int64(len(distinct)) {
		t.Fatal("no message was delivered twice: the kills tested too little")
	}
	checkPurchases(t, store, front, orderIDs, users)
	if mails, err := filepath.Glob(filepath.Join(mail, "*.eml")); err != nil || len(mails) == 0 {
		t.Errorf("%d tickets mailed, %v", len(mails), err)
	}
}

// checkPurchases checks the store after the crashes.
func checkPurchases(t *testing.T, store *sqlite.Store, front *app.App, orderIDs, users []string) {
	t.Helper()
	ctx := context.Background()
	reg := front.Registry()
	// Every order ended in exactly one final state.
	byFinal := map[string]int{}
	completedValue, completedSeats := int64(0), 0
	reservationOf := map[string]string{} // completed order -> its reservation
	seatsOf := map[string]int{}          // completed order -> its seats
	ticketsOf := map[string][]string{}   // completed order -> the tickets it was told of
	for i, id := range orderIDs {
		var finals []string
		for e, err := range store.ReadStream(ctx, orders.Stream(id), es.StreamQuery{}) {
			if err != nil {
				t.Fatal(err)
			}
			switch e.Type {
			case "orders.OrderCompleted", "orders.OrderRejected", "orders.OrderCancelled":
				finals = append(finals, e.Type)
			}
		}
		if len(finals) != 1 {
			t.Fatalf("order %s of %s ended %d times: %v", id, users[i], len(finals), finals)
		}
		o, err := front.Order(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		byFinal[string(o.Status)]++
		declined := strings.HasSuffix(users[i], "-declined")
		switch {
		case declined && o.Status == orders.Completed:
			t.Errorf("order %s of %s completed with a declined card", id, users[i])
		case o.Status == orders.Completed:
			completedValue += o.Total.Amount
			completedSeats += o.Lines[0].Quantity
			reservationOf[id] = o.ReservationID
			seatsOf[id] = o.Lines[0].Quantity
			ticketsOf[id] = o.TicketIDs
		case o.Status == orders.Cancelled && !strings.HasPrefix(o.Reason, "payment failed"):
			t.Errorf("order %s of %s cancelled: %s", id, users[i], o.Reason)
		}
	}
	// No order was charged twice, and the money adds up, as the finance
	// module's payment streams tell it.
	charges := map[string]int{}
	var captured, refunded int64
	for e, err := range store.ReadAll(ctx, es.AllQuery{Categories: []string{"payment"}}) {
		if err != nil {
			t.Fatal(err)
		}
		v, err := reg.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		switch v := v.(type) {
		case finance.PaymentCaptured:
			charges[v.OrderID]++
			captured += v.Amount.Amount
		case finance.LateCaptureDetected:
			charges[v.OrderID]++
			captured += v.Amount.Amount
		case finance.RefundCompleted:
			refunded += v.Amount.Amount
		case finance.CaptureReversed:
			refunded += v.Amount.Amount
		}
	}
	for id, n := range charges {
		if n > 1 {
			t.Errorf("order %s was charged %d times", id, n)
		}
	}
	if captured-refunded != completedValue {
		t.Errorf("captured %d minus refunded %d is %d; the completed orders are worth %d", captured, refunded, captured-refunded, completedValue)
	}
	// One ticket per seat of each completed order, and none for others,
	// as the tickets module's streams tell it.
	issued := map[string][]string{} // order -> its tickets' IDs
	for e, err := range store.ReadAll(ctx, es.AllQuery{Categories: []string{"ticket"}}) {
		if err != nil {
			t.Fatal(err)
		}
		v, err := reg.Decode(e)
		if err != nil {
			t.Fatal(err)
		}
		if ti, ok := v.(tickets.TicketIssued); ok {
			issued[ti.OrderID] = append(issued[ti.OrderID], ti.TicketID)
		}
	}
	ticketCount := 0
	for id, ids := range issued {
		ticketCount += len(ids)
		if len(ids) != seatsOf[id] {
			t.Errorf("order %s: %d tickets issued for %d seats", id, len(ids), seatsOf[id])
		}
	}
	for id, ids := range ticketsOf {
		slices.Sort(ids)
		got := slices.Sorted(slices.Values(issued[id]))
		if !slices.Equal(ids, got) {
			t.Errorf("completed order %s was told of tickets %v; the tickets module issued %v", id, ids, got)
		}
	}
	// Every seat is free or held by one completed order, and no more.
	inv, err := front.Inventory(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	booked := map[string]reservations.Reservation{} // every reservation, folded from its stream
	for e, err := range store.ReadAll(ctx, es.AllQuery{Categories: []string{reservations.ReservationCategory}}) {
		if err != nil {
			t.Fatal(err)
		}
		v, err := es.Decode[reservations.ReservationEvent](reg, e)
		if err != nil {
			t.Fatal(err)
		}
		booked[e.StreamID] = reservations.ReservationDecider().Evolve(booked[e.StreamID], v)
	}
	confirmed := 0
	for rid, r := range booked {
		switch r.Status {
		case reservations.Held:
			t.Errorf("reservation %s is still held", rid)
		case reservations.Confirmed:
			confirmed += r.Seats["GA"]
		}
	}
	for id, rid := range reservationOf {
		if st := booked[reservations.ReservationStream(rid)].Status; st != reservations.Confirmed {
			t.Errorf("completed order %s: reservation %s is %s", id, rid, st)
		}
	}
	if confirmed != completedSeats || inv.Reserved["GA"] != completedSeats || inv.Left("GA") != inv.Capacity["GA"]-completedSeats {
		t.Errorf("%d seats confirmed, %d reserved, %d left of %d; the completed orders hold %d",
			confirmed, inv.Reserved["GA"], inv.Left("GA"), inv.Capacity["GA"], completedSeats)
	}
	t.Logf("orders: %v; %d seats sold, %d tickets issued; captured %d, refunded %d", byFinal, completedSeats, ticketCount, captured, refunded)
}
