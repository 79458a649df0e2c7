package tickets_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/courier"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// quiet drops the logs of failures the tests cause on purpose.
var quiet = slog.New(slog.DiscardHandler)

var start = time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)

// testRetry is the harness's delivery policy: 3 attempts, 1m then 2m
// apart. The harness's relay retries its own failures after a few
// milliseconds of the fake clock, so moving the clock by a second
// redelivers a failed message without starting a delivery's next attempt.
var testRetry = tickets.RetryPolicy{MaxAttempts: 3, MinBackoff: time.Minute, MaxBackoff: 10 * time.Minute}

// harness is the tickets module on an in-memory store with an outbox, a
// relay feeding a bus, the .eml folder mailer (recorded) and the fake
// courier served over HTTP.
type harness struct {
	t      *testing.T
	store  *faultyStore
	reg    *es.Registry
	clock  *estest.FakeClock
	mails  *recordingMailer
	fake   *courier.Fake
	client *courier.Client
	bus    *es.Bus
	svc    *tickets.Service
	// published records the public messages tickets sends.
	mu        sync.Mutex
	published []any
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	reg := es.NewRegistry()
	if err := errors.Join(tickets.Register(reg), tickets.RegisterMessages(reg)); err != nil {
		t.Fatal(err)
	}
	clock := estest.NewFakeClock(start)
	folder, err := mailer.NewFolder(t.TempDir(), "tickets@example.com")
	if err != nil {
		t.Fatal(err)
	}
	fake := courier.NewFake(courier.FakeConfig{DeliverAfter: 1})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	h := &harness{t: t, store: &faultyStore{Store: memory.New(memory.Config{Clock: clock})}, reg: reg, clock: clock,
		mails: &recordingMailer{folder: folder}, fake: fake, client: courier.NewClient(srv.URL, nil)}
	h.bus, h.svc = h.process()
	for _, typ := range []string{"tickets.TicketsIssued", "tickets.DeliveryFailed"} {
		h.bus.Subscribe(typ, func(_ context.Context, m es.Message) error {
			v, err := es.DecodeMessage(reg, m)
			h.mu.Lock()
			defer h.mu.Unlock()
			h.published = append(h.published, v)
			return err
		})
	}
	return h
}

// process returns a bus with a new Service subscribed: another process
// on the same store.
func (h *harness) process() (*es.Bus, *tickets.Service) {
	svc, err := tickets.NewService(tickets.Config{Outbox: h.store, Registry: h.reg, Mailer: h.mails, Courier: h.client,
		Clock: h.clock, Retry: testRetry, TrackEvery: time.Minute, Logger: quiet})
	if err != nil {
		h.t.Fatal(err)
	}
	bus := es.NewBus()
	svc.Subscribe(bus)
	return bus, svc
}

// runRelay runs a relay from the store to bus until the returned function
// is called (or the test ends).
func (h *harness) runRelay(ctx context.Context, bus *es.Bus) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	relay := es.NewRelay(h.store, bus, es.RelayConfig{Clock: h.clock, PollInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 1000, Logger: quiet})
	go func() { done <- relay.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("relay: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// enqueue puts a message in the outbox, as the orders process does.
func (h *harness) enqueue(key string, v any) es.Message {
	h.t.Helper()
	m, err := es.NewMessage(h.reg, key, v)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.store.AppendEnqueue(context.Background(), es.Enqueue{Messages: []es.Message{m}}); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// eventually waits until cond holds, moving the clock by tick each time
// round (0: not at all), or fails the test after 20 seconds.
func (h *harness) eventually(what string, tick time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("gave up waiting until %s", what)
		}
		if tick > 0 {
			h.clock.Advance(tick)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) delivery(ticketID string) tickets.TicketDelivery {
	h.t.Helper()
	d, err := h.svc.Delivery(context.Background(), ticketID)
	if err != nil {
		h.t.Fatal(err)
	}
	return d
}

func (h *harness) ticket(ticketID string) tickets.Ticket {
	h.t.Helper()
	tk, err := h.svc.Ticket(context.Background(), ticketID)
	if err != nil {
		h.t.Fatal(err)
	}
	return tk
}

// status waits until a ticket's delivery has status want.
func (h *harness) status(ticketID string, want tickets.DeliveryStatus) tickets.TicketDelivery {
	h.t.Helper()
	h.eventually("delivery of "+ticketID+" is "+string(want), 0, func() bool { return h.delivery(ticketID).Status == want })
	return h.delivery(ticketID)
}

func (h *harness) publishedOf(typ any) []any {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []any
	for _, v := range h.published {
		if sameType(v, typ) {
			out = append(out, v)
		}
	}
	return out
}

func sameType(a, b any) bool {
	switch a.(type) {
	case tickets.TicketsIssued:
		_, ok := b.(tickets.TicketsIssued)
		return ok
	case tickets.DeliveryFailed:
		_, ok := b.(tickets.DeliveryFailed)
		return ok
	}
	return false
}

func order(id string, d tickets.Delivery, seats map[string]int) tickets.IssueTickets {
	return tickets.IssueTickets{OrderID: id, UserID: "ola", ConcertID: "c1", Seats: seats, Delivery: d}
}

// recordingMailer writes to a folder and records every Send.
type recordingMailer struct {
	folder *mailer.Folder
	mu     sync.Mutex
	sent   []tickets.Mail
	// afterSend, when set, runs after a mail was written.
	afterSend func()
}

func (m *recordingMailer) Send(ctx context.Context, mail tickets.Mail) (string, error) {
	ref, err := m.folder.Send(ctx, mail)
	if err != nil {
		return "", err
	}
	m.mu.Lock()
	m.sent = append(m.sent, mail)
	after := m.afterSend
	m.mu.Unlock()
	if after != nil {
		after()
	}
	return ref, nil
}

func (m *recordingMailer) calls() []tickets.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}

func (m *recordingMailer) files(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(m.folder.Dir(), "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// faultyStore is a memory store that fails the next appends holding an
// event of a given type, once per arming: a crash between calling out
// and recording what happened.
type faultyStore struct {
	*memory.Store
	mu       sync.Mutex
	failType string
	failures int
}

var errInjected = errors.New("injected fault: the process died before recording")

func (s *faultyStore) failNext(eventType string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failType = eventType
}

func (s *faultyStore) fault(appends []es.StreamAppend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range appends {
		for _, e := range a.Events {
			if s.failType != "" && e.Type == s.failType {
				s.failType = ""
				s.failures++
				return errInjected
			}
		}
	}
	return nil
}

func (s *faultyStore) Append(ctx context.Context, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	if err := s.fault(appends); err != nil {
		return nil, err
	}
	return s.Store.Append(ctx, appends...)
}

func (s *faultyStore) AppendEnqueue(ctx context.Context, enq es.Enqueue, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	if err := s.fault(appends); err != nil {
		return nil, err
	}
	return s.Store.AppendEnqueue(ctx, enq, appends...)
}

func TestAPaidOrderGetsOneTicketPerSeatByEmail(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 2, "VIP": 1}))
	ids := []string{tickets.TicketID("o1", "GA", 1), tickets.TicketID("o1", "GA", 2), tickets.TicketID("o1", "VIP", 1)}
	for _, id := range ids {
		h.status(id, tickets.StatusEmailed)
	}
	codes := map[string]bool{}
	for _, id := range ids {
		tk := h.ticket(id)
		if tk.UserID != "ola" || tk.ConcertID != "c1" || codes[tk.Code] {
			t.Errorf("ticket %+v", tk)
		}
		codes[tk.Code] = true
	}
	mails := h.mails.calls()
	if len(mails) != 3 || len(h.mails.files(t)) != 3 {
		t.Fatalf("%d mails sent, %d files; want 3", len(mails), len(h.mails.files(t)))
	}
	mailed := map[string]bool{}
	for _, m := range mails {
		for c := range codes {
			if strings.Contains(m.Text, "Ticket code: "+c) {
				mailed[c] = true
			}
		}
		if m.To != "ola@example.com" || len(m.Attachments) != 1 || m.Attachments[0].ContentType != "image/png" {
			t.Errorf("mail to %s, %d attachments", m.To, len(m.Attachments))
		}
	}
	if len(mailed) != 3 {
		t.Errorf("the mails carry %d of the 3 codes", len(mailed))
	}
	h.eventually("TicketsIssued is published", 0, func() bool { return len(h.publishedOf(tickets.TicketsIssued{})) == 1 })
	if got := h.publishedOf(tickets.TicketsIssued{})[0].(tickets.TicketsIssued); got.OrderID != "o1" || !slices.Equal(got.TicketIDs, ids) {
		t.Errorf("TicketsIssued %+v, want tickets %v", got, ids)
	}
}

func TestARepeatedIssueNeverIssuesASecondTicketForASeat(t *testing.T) {
	h := newHarness(t)
	first := h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 2}))
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 2})) // a second request, another message ID
	h.runRelay(context.Background(), h.bus)
	id1, id2 := tickets.TicketID("o1", "GA", 1), tickets.TicketID("o1", "GA", 2)
	h.status(id1, tickets.StatusEmailed)
	h.status(id2, tickets.StatusEmailed)
	h.eventually("TicketsIssued is published", 0, func() bool { return len(h.publishedOf(tickets.TicketsIssued{})) > 0 })
	h.eventually("the outbox is empty", 0, func() bool {
		n, err := h.store.Backlog(context.Background())
		return err == nil && n == 0
	})
	// And the first message redelivered, as after a relay crash.
	if err := h.bus.Publish(context.Background(), first); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{id1, id2} {
		var n int
		for e, err := range h.store.ReadStream(context.Background(), tickets.TicketStream(id), es.StreamQuery{}) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Type == "tickets.TicketIssued" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("ticket %s issued %d times", id, n)
		}
	}
	if n := len(h.mails.calls()); n != 2 {
		t.Errorf("%d mails, want 2", n)
	}
	if n := len(h.publishedOf(tickets.TicketsIssued{})); n != 1 {
		t.Errorf("TicketsIssued published %d times", n)
	}
}

func TestACrashBetweenMailingAndRecordingDoesNotLoseTheMail(t *testing.T) {
	h := newHarness(t)
	h.store.failNext("tickets.TicketEmailed")
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	// The relay retries its failed delivery once the (fake) clock passes
	// its backoff; the delivery's own retry, a minute away, is not due.
	h.eventually("the delivery is recorded", time.Second, func() bool { return h.delivery(id).Status == tickets.StatusEmailed })
	mails := h.mails.calls()
	if h.store.failures != 1 || len(mails) != 2 || mails[0].ID != mails[1].ID {
		t.Fatalf("%d injected faults, %d sends; want 1 fault and the same mail sent twice", h.store.failures, len(mails))
	}
	if files := h.mails.files(t); len(files) != 1 {
		t.Errorf("%d .eml files, want 1: the second send of the same mail replaces the first", len(files))
	}
	d := h.delivery(id)
	if d.Attempt != 1 {
		t.Errorf("attempt %d: a redelivery is not a new attempt", d.Attempt)
	}
	// Once the sending is recorded, a redelivered SendTicket mails nothing.
	again, err := es.NewMessage(h.reg, id, tickets.SendTicket{TicketID: id, RequestID: d.RequestID, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.bus.Publish(context.Background(), again); err != nil {
		t.Fatal(err)
	}
	if n := len(h.mails.calls()); n != 2 {
		t.Errorf("%d sends after a redelivery of a recorded sending, want still 2", n)
	}
}

func TestAProcessKilledAfterMailingDeliversOnRestart(t *testing.T) {
	h := newHarness(t)
	ctx, kill := context.WithCancel(context.Background())
	h.mails.afterSend = kill // the process dies right after the provider took the mail
	stop := h.runRelay(ctx, h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	<-ctx.Done()
	stop()
	id := tickets.TicketID("o1", "GA", 1)
	if d := h.delivery(id); d.Status != tickets.StatusPending || len(h.mails.calls()) != 1 {
		t.Fatalf("after the kill: status %s, %d mails; want pending and 1", d.Status, len(h.mails.calls()))
	}
	h.mails.afterSend = nil
	bus, _ := h.process() // a new process on the same store
	h.runRelay(context.Background(), bus)
	h.eventually("the delivery is recorded", time.Second, func() bool { return h.delivery(id).Status == tickets.StatusEmailed })
	if mails := h.mails.calls(); len(mails) != 2 || mails[0].ID != mails[1].ID || len(h.mails.files(t)) != 1 {
		t.Errorf("%d sends, %d files; want the same mail twice in one file", len(mails), len(h.mails.files(t)))
	}
}

func TestFailedDeliveriesAreRetriedWithBackoffThenTheBuyerIsTold(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext(100)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byCourier, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.eventually("attempt 1 fails", 0, func() bool { return h.delivery(id).Attempt == 2 })
	h.clock.Advance(59 * time.Second)
	time.Sleep(20 * time.Millisecond) // the relay polls every millisecond: give it time to (wrongly) retry early
	if n := h.fake.Requests(); n != 1 {
		t.Fatalf("%d courier requests before the backoff ran out, want 1", n)
	}
	h.clock.Advance(time.Second)
	h.eventually("attempt 2 fails", 0, func() bool { return h.delivery(id).Attempt == 3 })
	h.clock.Advance(2 * time.Minute)
	d := h.status(id, tickets.StatusFailed)
	if n := h.fake.Requests(); n != 3 || !strings.Contains(d.LastError, "503") {
		t.Errorf("%d courier requests, last error %q; want 3 and the courier's 503", n, d.LastError)
	}
	h.eventually("DeliveryFailed is published", 0, func() bool { return len(h.publishedOf(tickets.DeliveryFailed{})) == 1 })
	if got := h.publishedOf(tickets.DeliveryFailed{})[0].(tickets.DeliveryFailed); got.OrderID != "o1" || got.TicketID != id || got.Reason == "" {
		t.Errorf("DeliveryFailed %+v", got)
	}
	h.clock.Advance(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if n := h.fake.Requests(); n != 3 {
		t.Errorf("%d courier requests after giving up, want 3", n)
	}
}

func TestAFlakyCourierDeliversOnARetry(t *testing.T) {
	h := newHarness(t)
	h.fake.FailNext(1)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byCourier, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.eventually("the parcel is delivered", 10*time.Second, func() bool { return h.delivery(id).Status == tickets.StatusDelivered })
	if s := h.fake.Shipments(); len(s) != 1 || !strings.Contains(s[0].Contents, h.ticket(id).Code) || s[0].Recipient != "Ola Nowak, Marszałkowska 1, 00-001 Warszawa, PL" {
		t.Errorf("shipments %+v", s)
	}
}

func TestALostParcelIsCompensatedWithANewCodeAndANewParcel(t *testing.T) {
	h := newHarness(t)
	h.fake.LoseNext(1)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byCourier, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.status(id, tickets.StatusShipped)
	lostCode := h.ticket(id).Code
	h.eventually("the parcel is delivered", 10*time.Second, func() bool { return h.delivery(id).Status == tickets.StatusDelivered })
	s := h.fake.Shipments()
	if len(s) != 2 || s[0].Status != "lost" || s[0].Key == s[1].Key {
		t.Fatalf("shipments %+v; want a lost one and a new one with a new key", s)
	}
	newCode := h.ticket(id).Code
	if newCode == lostCode || !strings.Contains(s[1].Contents, newCode) {
		t.Fatalf("the second parcel carries %q; want a new code, not %q", s[1].Contents, lostCode)
	}
	ctx := context.Background()
	if _, err := h.svc.Admit(ctx, "", tickets.Scan{Code: lostCode, ConcertID: "c1", Gate: "g1"}); !errors.Is(err, tickets.ErrInvalidCode) {
		t.Errorf("the lost parcel's code: %v, want ErrInvalidCode", err)
	}
	if _, err := h.svc.Admit(ctx, "", tickets.Scan{Code: newCode, ConcertID: "c1", Gate: "g1"}); err != nil {
		t.Errorf("the new code: %v", err)
	}
}

func TestAVoidedTicketIsRefusedAtTheGateAndItsParcelNoLongerTracked(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byCourier, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.status(id, tickets.StatusShipped)
	h.enqueue("o1", tickets.VoidTickets{OrderID: "o1", Reason: "concert cancelled"})
	h.status(id, tickets.StatusCancelled)
	_, err := h.svc.Admit(context.Background(), "", tickets.Scan{Code: h.ticket(id).Code, ConcertID: "c1", Gate: "g1"})
	if !errors.Is(err, tickets.ErrTicketVoided) || !strings.Contains(err.Error(), "concert cancelled") {
		t.Errorf("scan of a voided ticket: %v", err)
	}
	if err := h.svc.Resend(context.Background(), es.NewID(), id, nil); !errors.Is(err, tickets.ErrTicketVoided) {
		t.Errorf("resend of a voided ticket: %v", err)
	}
}

func TestAVoidThatOvertakesTheIssueLeavesNoTickets(t *testing.T) {
	h := newHarness(t)
	h.enqueue("o1", tickets.VoidTickets{OrderID: "o1", Reason: "refunded"})
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	h.runRelay(context.Background(), h.bus)
	h.eventually("the outbox is empty", 0, func() bool {
		n, err := h.store.Backlog(context.Background())
		return err == nil && n == 0
	})
	if tk := h.ticket(tickets.TicketID("o1", "GA", 1)); tk.Exists() || len(h.mails.calls()) != 0 {
		t.Errorf("ticket %+v, %d mails; want none", tk, len(h.mails.calls()))
	}
}

func TestAnAdminResendIsAsIdempotentAsTheFirstSending(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.status(id, tickets.StatusEmailed)
	ctx := context.Background()
	resend := es.NewID()
	for range 3 { // the admin clicks three times; the request has one ID
		if err := h.svc.Resend(ctx, resend, id, nil); err != nil && !errors.Is(err, tickets.ErrDeliveryInProgress) {
			t.Fatal(err)
		}
	}
	h.status(id, tickets.StatusEmailed)
	h.eventually("the resend is mailed", 0, func() bool { return len(h.mails.calls()) == 2 })
	if err := h.svc.Resend(ctx, resend, id, nil); err != nil {
		t.Fatalf("the same resend once more: %v", err)
	}
	time.Sleep(20 * time.Millisecond)
	mails := h.mails.calls()
	if len(mails) != 2 || mails[0].ID == mails[1].ID || mails[1].To != "ola@example.com" {
		t.Fatalf("%d mails; want the first and one resend, with their own IDs", len(mails))
	}
	// Another request, to a new address.
	other := tickets.Delivery{Method: tickets.ByEmail, Email: "ola@work.example.com"}
	if err := h.svc.Resend(ctx, es.NewID(), id, &other); err != nil {
		t.Fatal(err)
	}
	h.eventually("the second resend is mailed", 0, func() bool { return len(h.mails.calls()) == 3 })
	if m := h.mails.calls()[2]; m.To != other.Email {
		t.Errorf("resent to %s, want %s", m.To, other.Email)
	}
	if err := h.svc.Resend(ctx, es.NewID(), id, &tickets.Delivery{Method: tickets.ByEmail, Email: "nope"}); !errors.Is(err, tickets.ErrInvalidDelivery) {
		t.Errorf("resend to a bad address: %v", err)
	}
	if err := h.svc.Resend(ctx, "", id, nil); !errors.Is(err, tickets.ErrInvalidDeliveryCommand) {
		t.Errorf("resend without an ID: %v", err)
	}
	if err := h.svc.Resend(ctx, es.NewID(), tickets.TicketID("o9", "GA", 1), nil); !errors.Is(err, tickets.ErrUnknownTicket) {
		t.Errorf("resend of no ticket: %v", err)
	}
}

func TestACourierReprintVoidsTheEarlierPaper(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byCourier, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.eventually("the parcel is delivered", 10*time.Second, func() bool { return h.delivery(id).Status == tickets.StatusDelivered })
	old := h.ticket(id).Code
	if err := h.svc.Resend(context.Background(), es.NewID(), id, nil); err != nil {
		t.Fatal(err)
	}
	h.eventually("the reprint is delivered", 10*time.Second, func() bool {
		return h.delivery(id).Status == tickets.StatusDelivered && len(h.fake.Shipments()) == 2
	})
	if s := h.fake.Shipments(); h.ticket(id).Code == old || !strings.Contains(s[1].Contents, h.ticket(id).Code) {
		t.Errorf("the reprint carries %q; the ticket's code is %q, was %q", s[1].Contents, h.ticket(id).Code, old)
	}
}

func TestAnUndeliverableAddressFailsTheDeliveryNotTheTickets(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", tickets.Delivery{Method: tickets.ByEmail, Email: "not an address"}, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	d := h.status(id, tickets.StatusFailed)
	if !h.ticket(id).Exists() || d.Attempt != 1 || !strings.Contains(d.LastError, "not an e-mail address") {
		t.Errorf("ticket exists %v, delivery %+v", h.ticket(id).Exists(), d)
	}
	h.eventually("DeliveryFailed is published", 0, func() bool { return len(h.publishedOf(tickets.DeliveryFailed{})) == 1 })
}

func TestAMalformedIssueIsRefusedAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []tickets.IssueTickets{
		order("o1", byEmail, nil),
		order("o1", byEmail, map[string]int{"GA": 0}),
		order("o1", byEmail, map[string]int{"GA": tickets.MaxSeatsPerOrder + 1}),
		{OrderID: "o1", ConcertID: "c1", Seats: map[string]int{"GA": 1}, Delivery: byEmail},
	} {
		m, err := es.NewMessage(h.reg, "o1", bad)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.bus.Publish(context.Background(), m); !errors.Is(err, tickets.ErrInvalidIssue) {
			t.Errorf("%+v: %v, want ErrInvalidIssue", bad, err)
		}
	}
	events, err := es.Collect(h.store.ReadAll(context.Background(), es.AllQuery{}))
	if err != nil || len(events) != 0 {
		t.Errorf("%d events stored (%v), want none", len(events), err)
	}
}

// barrierStore holds back the first n appends to ticket streams until all
// n have arrived: n scans that all decided on the same version, so that
// at most one of them can win.
type barrierStore struct {
	*memory.Store
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (s *barrierStore) Append(ctx context.Context, appends ...es.StreamAppend) ([]es.AppendResult, error) {
	if strings.HasPrefix(appends[0].StreamID, "ticket-") {
		s.mu.Lock()
		s.arrived++
		if s.arrived == s.n {
			close(s.all)
		}
		wait := s.arrived <= s.n
		s.mu.Unlock()
		if wait {
			select {
			case <-s.all:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	return s.Store.Append(ctx, appends...)
}

func TestConcurrentScansAtManyGatesAdmitATicketExactlyOnce(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.status(id, tickets.StatusEmailed)
	code := h.ticket(id).Code

	const scans = 64
	store := &barrierStore{Store: h.store.Store, n: scans, all: make(chan struct{})}
	// Two services stand for two processes: neither queues behind the
	// other, so only the expected version keeps them from both admitting.
	var gates [2]*tickets.Service
	for i := range gates {
		svc, err := tickets.NewService(tickets.Config{Outbox: store, Registry: h.reg, Mailer: h.mails, Courier: h.client, Clock: h.clock})
		if err != nil {
			t.Fatal(err)
		}
		gates[i] = svc
	}
	var (
		mu       sync.Mutex
		admitted []tickets.Admission
		refusals []*tickets.AlreadyUsedError
		wg       sync.WaitGroup
	)
	for i := range scans {
		wg.Go(func() {
			gate := []string{"north-1", "north-2", "south-1", "south-2"}[i%4]
			a, err := gates[i%2].Admit(context.Background(), es.NewID(), tickets.Scan{Code: code, ConcertID: "c1", Gate: gate})
			mu.Lock()
			defer mu.Unlock()
			var used *tickets.AlreadyUsedError
			switch {
			case err == nil:
				admitted = append(admitted, a)
			case errors.As(err, &used):
				refusals = append(refusals, used)
			default:
				t.Errorf("scan %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(admitted) != 1 || len(refusals) != scans-1 {
		t.Fatalf("%d admitted, %d refused as used; want 1 and %d", len(admitted), len(refusals), scans-1)
	}
	for _, r := range refusals {
		if r.Gate != admitted[0].Gate || !r.At.Equal(admitted[0].At) {
			t.Fatalf("refusal says gate %s at %s; the ticket was admitted at gate %s at %s", r.Gate, r.At, admitted[0].Gate, admitted[0].At)
		}
	}
	if tk := h.ticket(id); !tk.Admitted || tk.Gate != admitted[0].Gate {
		t.Errorf("ticket %+v", tk)
	}
}

func TestARetriedScanIsToldItAdmitted(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.status(id, tickets.StatusEmailed)
	scan := tickets.Scan{Code: h.ticket(id).Code, ConcertID: "c1", Gate: "north-1"}
	scanID := es.NewID()
	first, err := h.svc.Admit(context.Background(), scanID, scan)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.svc.Admit(context.Background(), scanID, scan)
	if err != nil || again != first {
		t.Errorf("the same scan again: %+v, %v; want %+v", again, err, first)
	}
	if _, err := h.svc.Admit(context.Background(), es.NewID(), scan); !errors.Is(err, tickets.ErrAlreadyUsed) {
		t.Errorf("another scan: %v, want ErrAlreadyUsed", err)
	}
}

func TestTheMailCarriesTheTicket(t *testing.T) {
	h := newHarness(t)
	h.runRelay(context.Background(), h.bus)
	h.enqueue("o1", order("o1", byEmail, map[string]int{"GA": 1}))
	id := tickets.TicketID("o1", "GA", 1)
	h.status(id, tickets.StatusEmailed)
	files := h.mails.files(t)
	if len(files) != 1 {
		t.Fatalf("%d files", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"To: ola@example.com", "Message-ID: <", "Content-Type: image/png", "Content-ID: <ticket-" + id + ".png>"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the .eml file lacks %q", want)
		}
	}
}
