package web_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"esgo.dev/examples/ticketing/users"
)

// TestBadInputIsRefusedAndWritesNothing sends what a client should not:
// oversized bodies, malformed JSON, unknown fields, trailing data, wrong
// content types, invalid IDs and keys. Each gets its 4xx and leaves the
// event store and the outbox as they were.
func TestBadInputIsRefusedAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	cust := e.newUser("cust", users.Customer)
	org := e.newUser("org", users.Organizer)
	admin := e.newUser("admin", users.Admin)
	concert := org.createConcert("Summer Night")
	e.settle()

	item := `{"concertId":"` + concert + `","ticketType":"Standing","quantity":1}`
	huge := `{"concertId":"` + strings.Repeat("a", 70<<10) + `","ticketType":"Standing","quantity":1}`
	json := "application/json"
	cases := []struct {
		name         string
		u            *user
		method, path string
		ctype, body  string
		header       []string
		want         int
	}{
		{"oversized body", cust, "POST", "/api/cart/items", json, huge, nil, http.StatusRequestEntityTooLarge},
		{"oversized concert", org, "POST", "/api/concerts", json, `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, nil, http.StatusRequestEntityTooLarge},
		{"malformed JSON", cust, "POST", "/api/cart/items", json, `{"concertId":`, nil, http.StatusBadRequest},
		{"not an object", cust, "POST", "/api/cart/items", json, `[1,2,3]`, nil, http.StatusBadRequest},
		{"wrong type of value", cust, "POST", "/api/cart/items", json, `{"concertId":"` + concert + `","ticketType":"Standing","quantity":"two"}`, nil, http.StatusBadRequest},
		{"unknown field", cust, "POST", "/api/cart/items", json, `{"concertId":"` + concert + `","ticketType":"Standing","quantity":1,"unitPrice":1}`, nil, http.StatusBadRequest},
		{"unknown nested field", org, "POST", "/api/concerts", json, `{"name":"X","ticketTypes":[{"name":"A","price":{"amount":1,"currency":"PLN","cents":1}}]}`, nil, http.StatusBadRequest},
		{"trailing JSON", cust, "POST", "/api/cart/items", json, item + item, nil, http.StatusBadRequest},
		{"trailing garbage", cust, "POST", "/api/cart/items", json, item + " x", nil, http.StatusBadRequest},
		{"text/plain", cust, "POST", "/api/cart/items", "text/plain", item, nil, http.StatusUnsupportedMediaType},
		{"no content type", cust, "POST", "/api/cart/items", "", item, nil, http.StatusUnsupportedMediaType},
		{"form", cust, "PUT", "/api/cart/delivery", "application/x-www-form-urlencoded", "method=email", nil, http.StatusUnsupportedMediaType},
		{"empty body", cust, "PUT", "/api/billing", json, "", nil, http.StatusBadRequest},
		{"invalid concert ID in the body", cust, "POST", "/api/cart/items", json, `{"concertId":"Not An ID","ticketType":"Standing","quantity":1}`, nil, http.StatusBadRequest},
		{"quantity out of range", cust, "POST", "/api/cart/items", json, `{"concertId":"` + concert + `","ticketType":"Standing","quantity":0}`, nil, http.StatusBadRequest},
		{"unknown concert", cust, "POST", "/api/cart/items", json, `{"concertId":"no-such-concert","ticketType":"Standing","quantity":1}`, nil, http.StatusNotFound},
		{"invalid order ID", cust, "GET", "/api/orders/not-a-uuid", "", "", nil, http.StatusBadRequest},
		{"invalid order ID to cancel", cust, "POST", "/api/orders/42/cancel", json, `{"reason":"x"}`, nil, http.StatusBadRequest},
		{"upper-case UUID", cust, "GET", "/api/tickets/" + strings.ToUpper(concert) + "/qr.png", "", "", nil, http.StatusBadRequest},
		{"invalid payment ID", cust, "GET", "/api/payments/x", "", "", nil, http.StatusBadRequest},
		{"invalid invoice ID", cust, "GET", "/api/invoices/x", "", "", nil, http.StatusBadRequest},
		{"invalid concert ID in the path", org, "POST", "/api/concerts/Not%20An%20ID/cancel", json, `{"reason":"x"}`, nil, http.StatusBadRequest},
		{"invalid cart line", cust, "DELETE", "/api/cart/items/BAD/Standing", "", "", nil, http.StatusBadRequest},
		{"invalid user ID", admin, "PUT", "/api/users/1/role", json, `{"role":"organizer"}`, nil, http.StatusBadRequest},
		{"unknown role", admin, "PUT", "/api/users/" + cust.ID + "/role", json, `{"role":"king"}`, nil, http.StatusBadRequest},
		{"unknown user", admin, "PUT", "/api/users/" + concert + "/role", json, `{"role":"organizer"}`, nil, http.StatusNotFound},
		{"non-ASCII Idempotency-Key", cust, "POST", "/api/cart/items", json, item, []string{"Idempotency-Key", "klucz-źdźbło"}, http.StatusBadRequest},
		{"long Idempotency-Key", cust, "POST", "/api/cart/items", json, item, []string{"Idempotency-Key", strings.Repeat("k", 201)}, http.StatusBadRequest},
		{"invalid delivery", cust, "PUT", "/api/cart/delivery", json, `{"method":"pigeon"}`, nil, http.StatusBadRequest},
		{"concert in the past", org, "POST", "/api/concerts", json, `{"name":"X","artist":"Y","venue":"Z","startsAt":"2001-01-01T20:00:00Z",
			"ticketTypes":[{"name":"A","price":{"amount":100,"currency":"PLN"}}],"capacity":{"A":1}}`, nil, http.StatusUnprocessableEntity},
		{"bad time", org, "POST", "/api/concerts", json, `{"name":"X","startsAt":"tomorrow"}`, nil, http.StatusBadRequest},
		{"bad currency", org, "POST", "/api/concerts", json, `{"name":"X","artist":"Y","venue":"Z","startsAt":"2100-01-01T20:00:00Z",
			"ticketTypes":[{"name":"A","price":{"amount":100,"currency":"zl"}}],"capacity":{"A":1}}`, nil, http.StatusBadRequest},
		{"password over bcrypt's 72 bytes", cust, "POST", "/api/users", json,
			`{"email":"long@example.com","name":"L","password":"` + strings.Repeat("p", 73) + `"}`, nil, http.StatusBadRequest},
		{"checkout of no cart", cust, "POST", "/api/cart/checkout", "", "", nil, http.StatusUnprocessableEntity},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.mark()
			st, body := c.u.raw(c.method, c.path, c.ctype, []byte(c.body), c.header...)
			if st != c.want {
				t.Errorf("%d %s, want %d", st, truncate(body), c.want)
			}
			if !bytes.HasPrefix(body, []byte(`{"error":`)) {
				t.Errorf("body %s is not a problem", truncate(body))
			}
			if after := e.mark(); after != before {
				t.Errorf("refused, but wrote: %+v, before %+v", after, before)
			}
		})
	}
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%s...", b[:200])
	}
	return string(b)
}

// TestARetriedPostIsARepeat sends each creating POST twice with one
// Idempotency-Key: the second answers as the first and adds nothing.
func TestARetriedPostIsARepeat(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)

	var ids []string
	for range 2 {
		st, body := org.do("POST", "/api/concerts", concertBody("Summer Night"), "Idempotency-Key", "concert-1")
		if st != http.StatusCreated {
			t.Fatalf("create concert: %d %s", st, body)
		}
		ids = append(ids, decodeJSON[map[string]string](t, body)["id"])
	}
	e.settle()
	st, body := org.do("GET", "/api/concerts", nil)
	if ids[0] != ids[1] || st != http.StatusOK || len(decodeJSON[[]map[string]any](t, body)) != 1 {
		t.Fatalf("two creations with one key: ids %v, concerts %s", ids, body)
	}
	concert := ids[0]

	for range 2 {
		if st, body := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 2},
			"Idempotency-Key", "add-1"); st != http.StatusNoContent {
			t.Fatalf("add to cart: %d %s", st, body)
		}
	}
	st, body = cust.do("GET", "/api/cart", nil)
	cart := decodeJSON[struct {
		Lines []struct{ Quantity int } `json:"lines"`
	}](t, body)
	if st != http.StatusOK || len(cart.Lines) != 1 || cart.Lines[0].Quantity != 2 {
		t.Fatalf("cart after adding twice with one key: %d %s", st, body)
	}
	// Another customer's same key is another command.
	other := e.newUser("cust2", users.Customer)
	if st, body := other.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 1},
		"Idempotency-Key", "add-1"); st != http.StatusNoContent {
		t.Fatalf("another customer's add: %d %s", st, body)
	}

	if st, body := cust.do("PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email}); st != http.StatusNoContent {
		t.Fatalf("delivery: %d %s", st, body)
	}
	var orders []string
	for range 2 {
		st, body := cust.do("POST", "/api/cart/checkout", nil, "Idempotency-Key", "checkout-1")
		if st != http.StatusAccepted {
			t.Fatalf("checkout: %d %s", st, body)
		}
		orders = append(orders, decodeJSON[map[string]map[string]string](t, body)["orders"][concert])
	}
	if orders[0] == "" || orders[0] != orders[1] {
		t.Fatalf("two checkouts with one key gave orders %v", orders)
	}
	e.settle()
	st, body = cust.do("GET", "/api/orders", nil)
	if n := len(decodeJSON[[]map[string]any](t, body)); st != http.StatusOK || n != 1 {
		t.Fatalf("orders after a repeated checkout: %d %s", st, body)
	}
}

// TestIfMatchDecidesOnTheVersionTheClientRead edits a concert's ticket
// types and a cart line with the ETag read: a stale one is refused with
// 412 and changes nothing.
func TestIfMatchDecidesOnTheVersionTheClientRead(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Summer Night")
	e.settle()

	read := func(u *user, path string) string {
		t.Helper()
		req, _ := http.NewRequest("GET", e.Server.URL+path, nil)
		resp, err := u.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
			t.Fatalf("GET %s: %d, ETag %q", path, resp.StatusCode, resp.Header.Get("ETag"))
		}
		return resp.Header.Get("ETag")
	}
	prices := func(amount int) map[string]any {
		return map[string]any{"ticketTypes": []map[string]any{{"name": "Seat", "price": map[string]any{"amount": amount, "currency": "PLN"}}}}
	}
	path := "/api/concerts/" + concert + "/ticket-types"
	tag := read(org, "/api/concerts/"+concert)
	if st, body := org.do("PUT", path, prices(30000)); st != http.StatusPreconditionRequired {
		t.Fatalf("without If-Match: %d %s, want 428", st, body)
	}
	if st, body := org.do("PUT", path, prices(30000), "If-Match", "seven"); st != http.StatusPreconditionFailed {
		t.Fatalf("with a malformed If-Match: %d %s, want 412", st, body)
	}
	if st, body := org.do("PUT", path, prices(30000), "If-Match", tag); st != http.StatusNoContent {
		t.Fatalf("with the ETag read: %d %s", st, body)
	}
	before := e.mark()
	if st, body := org.do("PUT", path, prices(40000), "If-Match", tag); st != http.StatusPreconditionFailed {
		t.Fatalf("with a stale ETag: %d %s, want 412", st, body)
	}
	if after := e.mark(); after != before {
		t.Fatalf("a stale If-Match wrote: %+v, before %+v", after, before)
	}
	if tag2 := read(org, "/api/concerts/"+concert); tag2 == tag {
		t.Fatalf("the ETag did not change: %s", tag2)
	}

	if st, body := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 1}); st != http.StatusNoContent {
		t.Fatalf("add: %d %s", st, body)
	}
	line := "/api/cart/items/" + concert + "/Seat"
	tag = read(cust, "/api/cart")
	if st, body := cust.do("PUT", line, map[string]int{"quantity": 2}, "If-Match", tag); st != http.StatusNoContent {
		t.Fatalf("change with the ETag read: %d %s", st, body)
	}
	if st, body := cust.do("PUT", line, map[string]int{"quantity": 5}, "If-Match", tag); st != http.StatusPreconditionFailed {
		t.Fatalf("change with a stale ETag: %d %s, want 412", st, body)
	}
	if st, body := cust.do("PUT", line, map[string]int{"quantity": 3}); st != http.StatusNoContent {
		t.Fatalf("change without If-Match: %d %s", st, body)
	}
	_, body := cust.do("GET", "/api/cart", nil)
	if q := decodeJSON[struct {
		Lines []struct{ Quantity int } `json:"lines"`
	}](t, body).Lines[0].Quantity; q != 3 {
		t.Fatalf("quantity %d, want 3", q)
	}
}

// TestConcurrentEditsWithOneETagOneWins sends two edits made from the same
// read at once, to a concert's ticket types and to a cart line: one is
// applied, the other refused with 412, never both decided.
func TestConcurrentEditsWithOneETagOneWins(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Summer Night")
	e.settle()
	if st, body := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 1}); st != http.StatusNoContent {
		t.Fatalf("add: %d %s", st, body)
	}
	etagOf := func(u *user, path string) string {
		req, _ := http.NewRequest("GET", e.Server.URL+path, nil)
		resp, err := u.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	race := func(u *user, path string, tag string, bodies ...any) {
		t.Helper()
		statuses := make(chan int, len(bodies))
		var wg sync.WaitGroup
		for _, b := range bodies {
			wg.Go(func() {
				st, _ := u.send("PUT", path, b, "If-Match", tag)
				statuses <- st
			})
		}
		wg.Wait()
		close(statuses)
		got := map[int]int{}
		for st := range statuses {
			got[st]++
		}
		if got[http.StatusNoContent] != 1 || got[http.StatusPreconditionFailed] != len(bodies)-1 {
			t.Fatalf("PUT %s from one read: statuses %v, want one 204 and the rest 412", path, got)
		}
	}
	price := func(n int) any {
		return map[string]any{"ticketTypes": []map[string]any{{"name": "Seat", "price": map[string]any{"amount": n, "currency": "PLN"}}}}
	}
	race(org, "/api/concerts/"+concert+"/ticket-types", etagOf(org, "/api/concerts/"+concert), price(30000), price(40000), price(50000))
	race(cust, "/api/cart/items/"+concert+"/Seat", etagOf(cust, "/api/cart"),
		map[string]int{"quantity": 2}, map[string]int{"quantity": 3}, map[string]int{"quantity": 4})
}
