package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

// raw sends body as it is, with contentType (none if empty).
func (u *user) raw(method, path, contentType string, body []byte, header ...string) (int, []byte) {
	u.env.t.Helper()
	req, err := http.NewRequest(method, u.env.Server.URL+path, bytes.NewReader(body))
	if err != nil {
		u.env.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.env.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mark is what the event store and the outbox hold at a moment.
type mark struct{ head, backlog int64 }

func (e *env) mark() mark {
	e.t.Helper()
	ctx := context.Background()
	h, err := e.Store.Head(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	b, err := e.Store.Backlog(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return mark{h, b}
}

// settle waits until the application has done what it was asked: no
// message due in the outbox, the expiry process fed every reservation
// event, every read model caught up. Then a refused request can be seen
// to write nothing.
func (e *env) settle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		var due, booked int64
		db := e.Store.DB()
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM es_outbox WHERE delivered_at IS NULL AND cancelled_at IS NULL
			AND parked = 0 AND coalesce(deliver_at, 0) <= ?`, time.Now().UnixNano()).Scan(&due); err != nil {
			e.t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT coalesce(max(position), 0) FROM es_events WHERE category = 'reservation'`).Scan(&booked); err != nil {
			e.t.Fatal(err)
		}
		fed, err := e.Store.LoadCheckpoint(ctx, "reservation-expiry")
		if err != nil {
			e.t.Fatal(err)
		}
		if due == 0 && fed >= booked {
			if err := e.App.WaitForReadModels(ctx); err != nil {
				e.t.Fatal(err)
			}
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("the application did not settle: %d messages due, expiry fed to %d of %d", due, fed, booked)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// eventually polls cond until it holds, or fails the test after a minute.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// concertBody is a valid POST /api/concerts body: a concert in a month,
// with standing places (100 PLN, capacity 50) and seats (250 PLN, 20).
func concertBody(name string) map[string]any {
	return map[string]any{
		"name": name, "artist": "Kwiat Jabłoni", "venue": "Torwar, Warsaw",
		"startsAt": time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Hour).Format(time.RFC3339),
		"ticketTypes": []map[string]any{
			{"name": "Standing", "price": map[string]any{"amount": 10000, "currency": "PLN"}},
			{"name": "Seat", "price": map[string]any{"amount": 25000, "currency": "PLN"}},
		},
		"capacity": map[string]int{"Standing": 50, "Seat": 20},
	}
}

// createConcert makes a concert of the organizer u through the API.
func (u *user) createConcert(name string) string {
	u.env.t.Helper()
	st, body := u.do("POST", "/api/concerts", concertBody(name))
	if st != http.StatusCreated {
		u.env.t.Fatalf("create concert: %d %s", st, body)
	}
	return decodeJSON[map[string]string](u.env.t, body)["id"]
}

// purchase buys quantity tickets of a concert for the customer u, by
// e-mail, and waits until the order is completed and its tickets are in
// the read models. It returns the order ID.
func (u *user) purchase(concertID, ticketType string, quantity int) string {
	e := u.env
	e.t.Helper()
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PUT", "/api/billing", map[string]string{"name": "Ala Kowalska", "address": "Długa 1, Warszawa", "email": u.Email}, 204},
		{"POST", "/api/cart/items", map[string]any{"concertId": concertID, "ticketType": ticketType, "quantity": quantity}, 204},
		{"PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": u.Email}, 204},
	}
	for _, s := range steps {
		if st, body := u.do(s.method, s.path, s.body); st != s.want {
			e.t.Fatalf("%s %s: %d %s", s.method, s.path, st, body)
		}
	}
	st, body := u.do("POST", "/api/cart/checkout", nil)
	if st != http.StatusAccepted {
		e.t.Fatalf("checkout: %d %s", st, body)
	}
	orderID := decodeJSON[map[string]map[string]string](e.t, body)["orders"][concertID]
	e.eventually("order "+orderID+" completed", func() bool {
		st, body := u.do("GET", "/api/orders/"+orderID, nil)
		return st == http.StatusOK && decodeJSON[map[string]any](e.t, body)["status"] == string(orders.Completed)
	})
	e.settle()
	return orderID
}

// roles are the viewers the route × role test walks.
type roles struct {
	anon, cust, cust2, org, org2, admin *user
}

func (e *env) roles() roles {
	return roles{anon: e.anonymous(), cust: e.newUser("cust", users.Customer), cust2: e.newUser("cust2", users.Customer),
		org: e.newUser("org", users.Organizer), org2: e.newUser("org2", users.Organizer), admin: e.newUser("admin", users.Admin)}
}

func (r roles) all() []*user { return []*user{r.anon, r.cust, r.cust2, r.org, r.org2, r.admin} }

func roleName(i int) string {
	return [...]string{"anonymous", "customer", "other customer", "organizer", "other organizer", "admin"}[i]
}

// ticketIDs returns the IDs of an order's tickets, as its buyer sees it.
func (u *user) ticketIDs(orderID string) []string {
	u.env.t.Helper()
	st, body := u.do("GET", "/api/orders/"+orderID, nil)
	if st != http.StatusOK {
		u.env.t.Fatalf("order %s: %d %s", orderID, st, body)
	}
	return decodeJSON[struct {
		TicketIDs []string `json:"ticketIds"`
	}](u.env.t, body).TicketIDs
}

// ticketCode returns a ticket's code, as its holder sees it.
func (u *user) ticketCode(ticketID string) string {
	u.env.t.Helper()
	st, body := u.do("GET", "/api/tickets/"+ticketID, nil)
	if st != http.StatusOK {
		u.env.t.Fatalf("ticket %s: %d %s", ticketID, st, body)
	}
	return decodeJSON[struct {
		Code string `json:"code"`
	}](u.env.t, body).Code
}

// withWebhook configures a Stripe webhook secret, so the route exists.
func withWebhook(c *web.Config) { c.StripeWebhookSecret = "whsec_test_secret" }

// send is do for any goroutine: it returns a failure instead of ending
// the test.
func (u *user) send(method, path string, body any, header ...string) (int, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(method, u.env.Server.URL+path, bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := u.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}
