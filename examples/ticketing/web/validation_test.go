package web_test

// Validation at the door: the findings of the adversarial tests (see
// adversarial_test.go) about what the modules accept, fixed in the module
// where each rule belongs and checked here through HTTP.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"esgo.dev/examples/ticketing/users"
)

// advConcert creates a concert of the organizer u from a custom body.
func advConcert(t *testing.T, u *user, body map[string]any) string {
	t.Helper()
	st, b := u.do("POST", "/api/concerts", body)
	if st != http.StatusCreated {
		t.Fatalf("create concert: %d %s", st, b)
	}
	return decodeJSON[map[string]string](t, b)["id"]
}

// advBody is the body of a POST /api/concerts a month ahead, with ticket
// types priced in currency and their capacities.
func advBody(name string, types map[string]int64, capacity map[string]int, currency string) map[string]any {
	var tts []map[string]any
	for n, p := range types {
		tts = append(tts, map[string]any{"name": n, "price": map[string]any{"amount": p, "currency": currency}})
	}
	return map[string]any{
		"name": name, "artist": "A", "venue": "V",
		"startsAt":    time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Hour).Format(time.RFC3339),
		"ticketTypes": tts, "capacity": capacity,
	}
}

// ISO 4217: a made-up code, or one that names no money a ticket is paid
// in, is not a currency (400); a real one is.
func TestUnknownCurrencyIsRefused(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	for _, c := range []string{"ZZZ", "XTS"} {
		if st, b := org.do("POST", "/api/concerts", advBody("Zorkmids", map[string]int64{"A": 100}, map[string]int{"A": 5}, c)); st != http.StatusBadRequest {
			t.Errorf("a concert priced in %s: %d %s, want 400", c, st, b)
		}
	}
	advConcert(t, org, advBody("Euro", map[string]int64{"A": 100}, map[string]int{"A": 5}, "EUR"))
}

// A ticket type the organizer may name must be one a buyer can change and
// remove from the cart, whose path holds at most 100 bytes: a longer name,
// or one with a control character, is refused at creation (400), and the
// longest name allowed, or one with a slash, works all the way.
func TestEveryTicketTypeNameCanBeRemovedFromTheCart(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	for _, name := range []string{strings.Repeat("VIP ", 30), "VIP\nlounge", "VIP\x00"} {
		if st, b := org.do("POST", "/api/concerts", advBody("Long", map[string]int64{name: 100}, map[string]int{name: 5}, "PLN")); st != http.StatusBadRequest {
			t.Errorf("a ticket type named %q: %d %s, want 400", name, st, b)
		}
	}
	name := strings.Repeat("VIP ", 25) // 100 bytes
	concert := advConcert(t, org, advBody("Long", map[string]int64{name: 100}, map[string]int{name: 5}, "PLN"))
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": name, "quantity": 1}); st != 204 {
		t.Fatalf("add: %d %s", st, b)
	}
	path := "/api/cart/items/" + concert + "/" + strings.ReplaceAll(name, " ", "%20")
	if st, b := cust.do("DELETE", path, nil); st != 204 {
		t.Errorf("a line added with a 100-byte ticket type cannot be removed: DELETE %d %s", st, b)
	}
	// and a name with a slash
	slash := "Front/Back"
	concert2 := advConcert(t, org, advBody("Slash", map[string]int64{slash: 100}, map[string]int{slash: 5}, "PLN"))
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert2, "ticketType": slash, "quantity": 1}); st != 204 {
		t.Fatalf("add: %d %s", st, b)
	}
	if st, b := cust.do("PUT", "/api/cart/items/"+concert2+"/Front%2FBack", map[string]int{"quantity": 2}); st != 204 {
		t.Errorf("change quantity of a ticket type with a slash: %d %s", st, b)
	}
}

// Ticket types: every bad change is a 4xx and writes nothing (a type named
// twice with two prices is ambiguous: it used to be that the first
// silently won), and a bad list at creation is a 400.
func TestTicketTypeUpdatesValidate(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	concert := org.createConcert("Types")
	e.settle()
	tag := func() string {
		req, _ := http.NewRequest("GET", e.Server.URL+"/api/concerts/"+concert, nil)
		resp, _ := org.c.Do(req)
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	price := func(a int64, c string) map[string]any { return map[string]any{"amount": a, "currency": c} }
	cases := []map[string]any{
		{"ticketTypes": []map[string]any{{"name": "Seat", "price": price(-1, "PLN")}}},
		{"ticketTypes": []map[string]any{{"name": "Seat", "price": price(0, "PLN")}}},
		{"ticketTypes": []map[string]any{{"name": "Seat", "price": price(100, "EUR")}}},
		{"ticketTypes": []map[string]any{{"name": "Nope", "price": price(100, "PLN")}}},
		{"ticketTypes": []map[string]any{{"name": "Seat", "price": price(100, "PLN")}, {"name": "Seat", "price": price(200, "PLN")}}},
		{"ticketTypes": []map[string]any{{"name": "", "price": price(100, "PLN")}}},
		{"capacity": map[string]int{"Seat": -5}},
		{"capacity": map[string]int{"Nope": 5}},
	}
	for i, c := range cases {
		before := e.mark()
		st, b := org.do("PUT", "/api/concerts/"+concert+"/ticket-types", c, "If-Match", tag())
		e.settle()
		if st < 400 || st >= 500 || e.mark() != before {
			t.Errorf("case %d %v: %d %s, wrote %v", i, c, st, b, e.mark() != before)
		}
	}
	for i, body := range []map[string]any{
		advBody("Twice", map[string]int64{"Seat": 100}, map[string]int{"Seat": 5}, "PLN"),
		advBody("Empty", map[string]int64{"": 100}, map[string]int{"": 5}, "PLN"),
		advBody("NoPrice", map[string]int64{"Seat": 100}, map[string]int{"Seat": 5, "Box": 2}, "PLN"),
		advBody("NoCapacity", map[string]int64{"Seat": 100, "Box": 500}, map[string]int{"Seat": 5}, "PLN"),
	} {
		if i == 0 {
			tts := body["ticketTypes"].([]map[string]any)
			body["ticketTypes"] = append(tts, map[string]any{"name": "Seat", "price": price(200, "PLN")})
		}
		if st, b := org.do("POST", "/api/concerts", body); st != http.StatusBadRequest {
			t.Errorf("create %s: %d %s, want 400", body["name"], st, b)
		}
	}
}
