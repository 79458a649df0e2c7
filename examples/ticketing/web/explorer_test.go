package web_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"esgo.dev/examples/ticketing/users"
)

// Shapes of the explorer's JSON, as a client reads them.
type (
	streamsPage struct {
		Category   string   `json:"category"`
		Categories []string `json:"categories"`
		Streams    []struct {
			ID       string `json:"id"`
			Category string `json:"category"`
			Version  int64  `json:"version"`
		} `json:"streams"`
		Next string `json:"next"`
	}
	streamPage struct {
		ID     string `json:"id"`
		Events []struct {
			Type     string `json:"type"`
			Version  int64  `json:"version"`
			Position int64  `json:"position"`
			Data     map[string]any
			Metadata struct {
				CorrelationID string `json:"correlation_id"`
			} `json:"metadata"`
		} `json:"events"`
		CorrelationID string `json:"correlation_id"`
	}
	timelineNode struct {
		Kind        string `json:"kind"`
		ID          string `json:"id"`
		Type        string `json:"type"`
		StreamID    string `json:"stream_id"`
		CausationID string `json:"causation_id"`
		Depth       int    `json:"depth"`
	}
	timeline struct {
		CorrelationID string         `json:"correlation_id"`
		Nodes         []timelineNode `json:"nodes"`
		Messages      bool           `json:"messages"`
	}
	status struct {
		Head        int64 `json:"head"`
		Projections []struct {
			Name       string `json:"name"`
			Checkpoint int64  `json:"checkpoint"`
			Lag        int64  `json:"lag"`
		} `json:"projections"`
		OutboxBacklog int64 `json:"outbox_backlog"`
	}
)

func TestOnlyAdminsMayExploreTheEvents(t *testing.T) {
	e := newEnv(t)
	customer := e.newUser("customer", users.Customer)
	paths := []string{"/explorer", "/explorer/status", "/explorer/streams/user-" + customer.ID, "/explorer/search?q=x",
		"/api/explorer/streams", "/api/explorer/status", "/api/explorer/streams/user-" + customer.ID,
		"/api/explorer/correlations/" + customer.ID}
	for _, p := range paths {
		if st, body := e.anonymous().do("GET", p, nil); st != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s: %d %s, want 401", p, st, body)
		}
		if st, body := customer.do("GET", p, nil); st != http.StatusForbidden {
			t.Errorf("customer GET %s: %d %s, want 403", p, st, body)
		}
	}
}

func TestAnAdminListsStreamsByCategoryPageByPage(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	customer := e.newUser("customer", users.Customer)
	if err := e.App.WaitForReadModels(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, body := admin.do("GET", "/api/explorer/streams?category=user", nil)
	if st != http.StatusOK {
		t.Fatalf("streams: %d %s", st, body)
	}
	page := decodeJSON[streamsPage](t, body)
	var ids []string
	for _, s := range page.Streams {
		if s.Category != "user" || s.Version < 1 {
			t.Errorf("stream %+v in category user", s)
		}
		ids = append(ids, s.ID)
	}
	want := []string{"user-" + admin.ID, "user-" + customer.ID}
	slices.Sort(want)
	if !slices.Equal(ids, want) || page.Next != "" {
		t.Fatalf("user streams %v (next %q), want %v", ids, page.Next, want)
	}
	if !slices.Contains(page.Categories, "user") || !slices.Contains(page.Categories, "email") {
		t.Errorf("categories %v, want user and email among them", page.Categories)
	}
	// The next page starts after the ID given.
	_, body = admin.do("GET", "/api/explorer/streams?category=user&after="+want[0], nil)
	if page := decodeJSON[streamsPage](t, body); len(page.Streams) != 1 || page.Streams[0].ID != want[1] {
		t.Errorf("page after %s: %+v, want %s", want[0], page.Streams, want[1])
	}
	st, html := admin.do("GET", "/explorer?category=user", nil)
	if st != http.StatusOK || !strings.Contains(string(html), `href="/explorer/streams/user-`+customer.ID+`"`) {
		t.Errorf("streams page: %d, no link to the customer's stream:\n%s", st, html)
	}
	if st, _ := admin.do("GET", "/api/explorer/streams/no-such-stream", nil); st != http.StatusNotFound {
		t.Errorf("an unknown stream: %d, want 404", st)
	}
}

func TestTheExplorerRedactsPasswordHashes(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	if err := e.App.WaitForReadModels(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/api/explorer/streams/user-" + admin.ID, "/explorer/streams/user-" + admin.ID} {
		st, body := admin.do("GET", p, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, st, body)
		}
		// bcrypt hashes begin with $2a$, $2b$ or $2y$.
		if strings.Contains(string(body), "$2a$") || strings.Contains(string(body), "$2b$") || !strings.Contains(string(body), "[redacted]") {
			t.Errorf("GET %s shows a password hash or redacts nothing:\n%s", p, body)
		}
	}
	_, body := admin.do("GET", "/api/explorer/streams/user-"+admin.ID, nil)
	s := decodeJSON[streamPage](t, body)
	if len(s.Events) == 0 || s.Events[0].Data["password_hash"] != "[redacted]" || s.Events[0].Data["email"] != admin.Email {
		t.Errorf("the user's first event: %+v, want its password hash redacted and the rest shown", s.Events)
	}
}

func TestAPurchaseCanBeFollowedAcrossTheModulesByItsCorrelationID(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	p := e.buyTickets(2)

	// From the order's stream to the purchase's timeline.
	st, body := admin.do("GET", "/api/explorer/streams/order-"+p.OrderID, nil)
	if st != http.StatusOK {
		t.Fatalf("order stream: %d %s", st, body)
	}
	if s := decodeJSON[streamPage](t, body); s.CorrelationID != p.CheckoutID {
		t.Fatalf("the order's correlation is %q, want the checkout %s", s.CorrelationID, p.CheckoutID)
	}
	_, html := admin.do("GET", "/explorer/streams/order-"+p.OrderID, nil)
	if !strings.Contains(string(html), `id="purchase-timeline" class="id" href="/explorer/correlations/`+p.CheckoutID+`"`) {
		t.Errorf("the order's page does not link to its timeline:\n%s", html)
	}
	// The search box takes an order ID.
	st, html = admin.do("GET", "/explorer/search?q="+p.OrderID, nil)
	if st != http.StatusOK || !strings.Contains(string(html), `<code id="explorer-correlation-id">`+p.CheckoutID+`</code>`) {
		t.Errorf("searching the order: %d, not its timeline:\n%s", st, html)
	}

	st, body = admin.do("GET", "/api/explorer/correlations/"+p.CheckoutID, nil)
	if st != http.StatusOK {
		t.Fatalf("timeline: %d %s", st, body)
	}
	tl := decodeJSON[timeline](t, body)
	if !tl.Messages {
		t.Fatal("the SQLite store's messages were not looked up")
	}
	// Every node comes after its cause, one level deeper.
	at := map[string]int{}
	for i, n := range tl.Nodes {
		if n.CausationID != "" && n.CausationID != n.ID {
			parent, ok := at[n.CausationID]
			if !ok {
				t.Errorf("node %d (%s %s) comes before its cause %s", i, n.Kind, n.Type, n.CausationID)
			} else if tl.Nodes[parent].Depth+1 != n.Depth {
				t.Errorf("node %d (%s %s) at depth %d under a node at depth %d", i, n.Kind, n.Type, n.Depth, tl.Nodes[parent].Depth)
			}
		}
		at[n.ID] = i
	}
	// The checkout is the root, and the purchase went through each module:
	// each step is found under the one that caused it.
	if len(tl.Nodes) == 0 || tl.Nodes[0].ID != p.CheckoutID || tl.Nodes[0].Kind != "command" {
		t.Fatalf("first node %+v, want the checkout command %s", tl.Nodes[:min(1, len(tl.Nodes))], p.CheckoutID)
	}
	find := func(kind, typ, streamPrefix string) timelineNode {
		t.Helper()
		for _, n := range tl.Nodes {
			if n.Kind == kind && n.Type == typ && strings.HasPrefix(n.StreamID, streamPrefix) {
				return n
			}
		}
		t.Fatalf("no %s %s (stream %s...) in the timeline:\n%s", kind, typ, streamPrefix, describe(tl))
		return timelineNode{}
	}
	ancestor := func(n, of timelineNode) {
		t.Helper()
		for c := n; c.CausationID != "" && c.CausationID != c.ID; {
			i, ok := at[c.CausationID]
			if !ok {
				break
			}
			if c = tl.Nodes[i]; c.ID == of.ID {
				return
			}
		}
		t.Errorf("%s %s is not caused, directly or not, by %s %s:\n%s", n.Kind, n.Type, of.Kind, of.Type, describe(tl))
	}
	// The payment's outcome and the tickets' e-mails are recorded by
	// commands whose IDs derive from the message they answer: they are
	// in the purchase's correlation, as roots of their own, since a
	// command's events name the command as their cause.
	checkout := tl.Nodes[0]
	confirmed := find("event", "carts.CartConfirmed", "cart-")
	placeOrder := find("message", "orders.PlaceOrder", "")
	placed := find("event", "orders.OrderPlaced", "order-")
	seatsReserved := find("event", "reservations.SeatsReserved", "reservation-")
	requestPayment := find("message", "finance.RequestPayment", "")
	requested := find("event", "finance.PaymentRequested", "payment-")
	captured := find("event", "finance.PaymentCaptured", "payment-")
	succeeded := find("message", "finance.PaymentSucceeded", "")
	orderPaid := find("event", "orders.PaymentCaptured", "order-")
	issue := find("message", "tickets.IssueTickets", "")
	issued := find("event", "tickets.TicketIssued", "ticket-")
	completed := find("event", "orders.OrderCompleted", "order-")
	find("event", "tickets.TicketEmailed", "delivery-")
	for _, c := range [][2]timelineNode{{confirmed, checkout}, {placeOrder, checkout}, {placed, placeOrder},
		{seatsReserved, placeOrder}, {requestPayment, placeOrder}, {requested, requestPayment},
		{orderPaid, succeeded}, {issue, succeeded}, {issued, issue}, {completed, issue}} {
		ancestor(c[0], c[1])
	}
	if captured.CausationID != succeeded.CausationID {
		t.Errorf("the capture and its PaymentSucceeded have different causes:\n%s", describe(tl))
	}
	st, html = admin.do("GET", "/explorer/correlations/"+p.CheckoutID, nil)
	if st != http.StatusOK || !strings.Contains(string(html), `id="node-`+issued.ID+`"`) {
		t.Errorf("timeline page: %d, without the tickets' issue:\n%s", st, html)
	}
}

// describe lists a timeline's nodes, indented, for a failure message.
func describe(tl timeline) string {
	var b strings.Builder
	for _, n := range tl.Nodes {
		b.WriteString(strings.Repeat("  ", n.Depth) + n.Kind + " " + n.Type + " " + n.StreamID + " " + n.ID + " <- " + n.CausationID + "\n")
	}
	return b.String()
}

func TestTheStatusShowsEveryReadModelsCheckpointAndTheOutboxBacklog(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	if err := e.App.WaitForReadModels(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, body := admin.do("GET", "/api/explorer/status", nil)
	if st != http.StatusOK {
		t.Fatalf("status: %d %s", st, body)
	}
	s := decodeJSON[status](t, body)
	var got, want []string
	for _, p := range s.Projections {
		got = append(got, p.Name)
		if p.Checkpoint > s.Head || p.Lag != s.Head-p.Checkpoint {
			t.Errorf("read model %+v with the head at %d", p, s.Head)
		}
	}
	for _, p := range e.App.Projections() {
		want = append(want, p.Name)
	}
	if !slices.Equal(got, want) || !slices.Contains(got, "explorer") {
		t.Errorf("read models %v, want %v", got, want)
	}
	if s.Head < 1 || s.OutboxBacklog < 0 {
		t.Errorf("head %d, backlog %d; want the events of the admin's registration and an outbox", s.Head, s.OutboxBacklog)
	}
	st, html := admin.do("GET", "/explorer/status", nil)
	if st != http.StatusOK || !strings.Contains(string(html), `id="projection-explorer"`) {
		t.Errorf("status page: %d, without the explorer's read model:\n%s", st, html)
	}
}

func TestTheTimelinePageIndentsEachNodeUnderItsCause(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	p := e.buyTickets(1)
	st, html := admin.do("GET", "/explorer/correlations/"+p.CheckoutID, nil)
	if st != http.StatusOK || strings.Contains(string(html), "ZgotmplZ") || !strings.Contains(string(html), `data-depth="1" style="padding-left: 1.5em"`) {
		t.Errorf("timeline page: %d, nodes not indented:\n%s", st, html)
	}
	// An unknown ID is not found.
	if st, _ := admin.do("GET", "/explorer/search?q=nothing-like-it", nil); st != http.StatusNotFound {
		t.Errorf("searching nothing: %d, want 404", st)
	}
	if st, _ := admin.do("GET", "/api/explorer/correlations/nothing-like-it", nil); st != http.StatusNotFound {
		t.Errorf("an unknown correlation: %d, want 404", st)
	}
	// A stream ID finds the stream.
	st, html = admin.do("GET", "/explorer/search?q=order-"+p.OrderID, nil)
	if st != http.StatusOK || !strings.Contains(string(html), `<code id="explorer-stream-id">order-`+p.OrderID+`</code>`) {
		t.Errorf("searching the order's stream: %d\n%s", st, html)
	}
}
