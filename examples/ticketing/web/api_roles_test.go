package web_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/concerts"
)

// roleRow is one route of the route × role walk: the request each role
// sends and the status each must get, in the order anonymous, customer,
// other customer, organizer, other organizer, admin.
type roleRow struct {
	pattern string
	path    string
	body    func(u *user) any            // nil: no body
	header  func() []string              // extra headers, computed per request
	after   func(i int, u *user, st int) // runs after each request
	want    [6]int
}

const (
	s200 = http.StatusOK
	s201 = http.StatusCreated
	s202 = http.StatusAccepted
	s204 = http.StatusNoContent
	s400 = http.StatusBadRequest
	s401 = http.StatusUnauthorized
	s403 = http.StatusForbidden
	s404 = http.StatusNotFound
	s422 = http.StatusUnprocessableEntity
)

// TestEveryRouteRefusesTheWrongRolesAndWritesNothingWhenItDoes walks
// every auth and API route as every kind of viewer over one set of
// fixtures: organizer 1's concert, customer 1's completed order with two
// tickets, and so on. A refused request (4xx) must leave the event store's
// head and the outbox's backlog as they were.
func TestEveryRouteRefusesTheWrongRolesAndWritesNothingWhenItDoes(t *testing.T) {
	e := newEnv(t, withWebhook)
	r := e.roles()
	concert := r.org.createConcert("Summer Night")
	spare := r.org.createConcert("Winter Night") // to be cancelled
	e.settle()
	order := r.cust.purchase(concert, "Standing", 2)
	tickets := r.cust.ticketIDs(order)
	if len(tickets) != 2 {
		t.Fatalf("tickets: %v", tickets)
	}
	resent, scanned := tickets[0], tickets[1]
	code := r.cust.ticketCode(scanned)
	// Customer 1's open cart holds a line, for the routes that change one.
	if st, body := r.cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 1}); st != s204 {
		t.Fatalf("add to cart: %d %s", st, body)
	}
	target := es.NewID()
	if err := e.App.RegisterUser(t.Context(), target, "target@example.com", "Target", "correct horse battery", "customer"); err != nil {
		t.Fatal(err)
	}
	payment := paymentOf(t, r.cust, order)
	e.settle()

	price := int64(10000)
	n := 0
	rows := []roleRow{
		{pattern: "POST /api/users", path: "/api/users", body: func(*user) any {
			n++
			return map[string]string{"email": fmt.Sprintf("new-%d@example.com", n), "name": "New", "password": "correct horse battery"}
		}, want: [6]int{s201, s201, s201, s201, s201, s201}},
		{pattern: "POST /api/session", path: "/api/session", body: func(u *user) any {
			if u.ID == "" {
				return map[string]string{"email": "nobody@example.com", "password": "wrong password"}
			}
			return map[string]string{"email": u.Email, "password": "correct horse battery"}
		}, want: [6]int{s401, s200, s200, s200, s200, s200}},
		{pattern: "GET /api/session", path: "/api/session", want: [6]int{s401, s200, s200, s200, s200, s200}},
		{pattern: "DELETE /api/session", path: "/api/session", after: func(_ int, u *user, _ int) { u.logIn() },
			want: [6]int{s204, s204, s204, s204, s204, s204}},

		{pattern: "GET /api/users", path: "/api/users", want: [6]int{s401, s403, s403, s403, s403, s200}},
		{pattern: "PUT /api/users/{id}/role", path: "/api/users/" + target + "/role", body: constBody(map[string]string{"role": "organizer"}),
			want: [6]int{s401, s403, s403, s403, s403, s204}},

		{pattern: "GET /api/concerts", path: "/api/concerts", want: [6]int{s200, s200, s200, s200, s200, s200}},
		{pattern: "GET /api/concerts/{id}", path: "/api/concerts/" + concert, want: [6]int{s200, s200, s200, s200, s200, s200}},
		{pattern: "POST /api/concerts", path: "/api/concerts", body: constBody(concertBody("Autumn Night")),
			want: [6]int{s401, s403, s403, s201, s201, s403}},
		{pattern: "PUT /api/concerts/{id}/ticket-types", path: "/api/concerts/" + concert + "/ticket-types",
			body: func(*user) any {
				price += 100
				return map[string]any{"ticketTypes": []map[string]any{{"name": "Standing", "price": map[string]any{"amount": price, "currency": "PLN"}}}}
			},
			header: func() []string {
				_, v, err := e.App.Concerts.Load(t.Context(), concerts.Stream(concert))
				if err != nil {
					t.Fatal(err)
				}
				return []string{"If-Match", fmt.Sprintf("%q", fmt.Sprint(v))}
			},
			want: [6]int{s401, s403, s403, s204, s403, s403}},
		{pattern: "POST /api/concerts/{id}/cancel", path: "/api/concerts/" + spare + "/cancel", body: constBody(map[string]string{"reason": "storm"}),
			want: [6]int{s401, s403, s403, s204, s403, s403}},
		{pattern: "GET /api/concerts/{id}/sales", path: "/api/concerts/" + concert + "/sales", want: [6]int{s401, s403, s403, s200, s403, s403}},
		{pattern: "POST /api/concerts/{id}/scans", path: "/api/concerts/" + concert + "/scans", body: constBody(map[string]string{"code": code, "gate": "A"}),
			want: [6]int{s401, s403, s403, s200, s403, s403}},

		{pattern: "GET /api/cart", path: "/api/cart", want: [6]int{s401, s200, s200, s403, s403, s403}},
		{pattern: "POST /api/cart/items", path: "/api/cart/items",
			body: constBody(map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1}),
			want: [6]int{s401, s204, s204, s403, s403, s403}},
		{pattern: "PUT /api/cart/items/{concertId}/{ticketType}", path: "/api/cart/items/" + concert + "/Standing",
			body: constBody(map[string]int{"quantity": 3}), want: [6]int{s401, s204, s204, s403, s403, s403}},
		{pattern: "DELETE /api/cart/items/{concertId}/{ticketType}", path: "/api/cart/items/" + concert + "/Standing",
			want: [6]int{s401, s204, s204, s403, s403, s403}},
		{pattern: "PUT /api/cart/delivery", path: "/api/cart/delivery", body: func(u *user) any { return map[string]string{"method": "email", "email": "x@example.com"} },
			want: [6]int{s401, s204, s204, s403, s403, s403}},
		// Customer 1's cart still holds a Seat: checked out, it is an
		// order. Customer 2's is empty now: a business refusal.
		{pattern: "POST /api/cart/checkout", path: "/api/cart/checkout", want: [6]int{s401, s202, s422, s403, s403, s403}},

		{pattern: "GET /api/orders", path: "/api/orders", want: [6]int{s401, s200, s200, s403, s403, s403}},
		{pattern: "GET /api/orders/{id}", path: "/api/orders/" + order, want: [6]int{s401, s200, s404, s403, s403, s403}},
		{pattern: "POST /api/orders/{id}/cancel", path: "/api/orders/" + order + "/cancel", body: constBody(map[string]string{"reason": "changed my mind"}),
			want: [6]int{s401, s422, s404, s403, s403, s403}}, // paid: too late

		{pattern: "GET /api/tickets", path: "/api/tickets", want: [6]int{s401, s200, s200, s403, s403, s403}},
		{pattern: "GET /api/tickets/{id}", path: "/api/tickets/" + resent, want: [6]int{s401, s200, s404, s403, s403, s403}},
		{pattern: "GET /api/tickets/{id}/qr.png", path: "/api/tickets/" + resent + "/qr.png", want: [6]int{s401, s200, s404, s403, s403, s403}},
		{pattern: "POST /api/tickets/{id}/resend", path: "/api/tickets/" + resent + "/resend", body: constBody(map[string]any{}),
			want: [6]int{s401, s202, s404, s403, s403, s403}},

		{pattern: "GET /api/payments", path: "/api/payments", want: [6]int{s401, s200, s200, s403, s403, s403}},
		{pattern: "GET /api/payments/{id}", path: "/api/payments/" + payment, want: [6]int{s401, s200, s404, s403, s403, s403}},
		{pattern: "GET /api/invoices", path: "/api/invoices", want: [6]int{s401, s200, s200, s403, s403, s403}},
		{pattern: "GET /api/invoices/{orderId}", path: "/api/invoices/" + order, want: [6]int{s401, s200, s404, s403, s403, s403}},
		{pattern: "PUT /api/billing", path: "/api/billing", body: constBody(map[string]string{"name": "Jan", "address": "Krótka 2", "email": "jan@example.com"}),
			want: [6]int{s401, s204, s204, s403, s403, s403}},
		{pattern: "GET /api/organizer/revenue", path: "/api/organizer/revenue", want: [6]int{s401, s403, s403, s200, s200, s403}},
		// Stripe signs its posts; nobody's session makes up for a
		// missing signature.
		{pattern: "POST /api/webhooks/stripe", path: "/api/webhooks/stripe", body: constBody(map[string]string{"type": "payment_intent.succeeded"}),
			want: [6]int{s400, s400, s400, s400, s400, s400}},
	}

	// Every registered route has a row, and every row a route.
	var patterns []string
	for _, row := range rows {
		patterns = append(patterns, row.pattern)
	}
	registered := e.Web.RoutePatterns()
	slices.Sort(patterns)
	slices.Sort(registered)
	if !slices.Equal(patterns, registered) {
		t.Fatalf("the rows' patterns differ from the routes':\nrows:   %q\nroutes: %q", patterns, registered)
	}

	for _, row := range rows {
		method, _, _ := strings.Cut(row.pattern, " ")
		for i, u := range r.all() {
			var body any
			if row.body != nil {
				body = row.body(u)
			}
			var header []string
			if row.header != nil {
				header = row.header()
			}
			before := e.mark()
			st, resp := u.do(method, row.path, body, header...)
			if st != row.want[i] {
				t.Errorf("%s as %s: %d %s, want %d", row.pattern, roleName(i), st, resp, row.want[i])
			}
			if st >= 400 && st < 500 {
				if after := e.mark(); after != before {
					t.Errorf("%s as %s was refused (%d) but wrote: %+v, before %+v", row.pattern, roleName(i), st, after, before)
				}
			} else if method != "GET" {
				e.settle()
			}
			if row.after != nil {
				row.after(i, u, st)
			}
		}
	}
}

// constBody is a body function that always sends v.
func constBody(v any) func(*user) any { return func(*user) any { return v } }

// logIn logs u in again (a no-op for the anonymous client).
func (u *user) logIn() {
	u.env.t.Helper()
	if u.ID == "" {
		return
	}
	if st, body := u.do("POST", "/api/session", map[string]string{"email": u.Email, "password": "correct horse battery"}); st != http.StatusOK {
		u.env.t.Fatalf("log in: %d %s", st, body)
	}
}

// paymentOf returns the ID of the payment of an order, from its buyer's
// payments.
func paymentOf(t *testing.T, u *user, orderID string) string {
	t.Helper()
	st, body := u.do("GET", "/api/payments", nil)
	if st != http.StatusOK {
		t.Fatalf("payments: %d %s", st, body)
	}
	for _, p := range decodeJSON[[]map[string]any](t, body) {
		if p["orderId"] == orderID {
			return p["id"].(string)
		}
	}
	t.Fatalf("no payment of order %s in %s", orderID, body)
	return ""
}
