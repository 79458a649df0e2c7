package web_test

// Validation at the door: the findings of the adversarial tests (see
// adversarial_test.go) about what the modules accept, fixed in the module
// where each rule belongs and checked here through HTTP.

import (
	"fmt"
	"math"
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

// concertETag returns the ETag of a concert, for If-Match.
func (u *user) concertETag(concertID string) string {
	req, err := http.NewRequest("GET", u.env.Server.URL+"/api/concerts/"+concertID, nil)
	if err != nil {
		u.env.t.Fatal(err)
	}
	resp, err := u.c.Do(req)
	if err != nil {
		u.env.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("ETag")
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
		st, b := org.do("PUT", "/api/concerts/"+concert+"/ticket-types", c, "If-Match", org.concertETag(concert))
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

// Prices are bounded at the door (at most 1,000,000.00 a ticket), so a
// cart's total fits in int64 minor units: a price of half of MaxInt64 is
// refused (400), and a cart of the dearest tickets stays viewable.
func TestPricesAreBoundedSoACartTotalCannotOverflow(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	for _, p := range []int64{math.MaxInt64 / 2, 100_000_001} {
		if st, b := org.do("POST", "/api/concerts", advBody("Pricey", map[string]int64{"Gold": p}, map[string]int{"Gold": 10}, "PLN")); st != http.StatusBadRequest {
			t.Errorf("a ticket at %d minor units: %d %s, want 400", p, st, b)
		}
	}
	concert := advConcert(t, org, advBody("Pricey", map[string]int64{"Gold": 100_000_000, "Platinum": 100_000_000},
		map[string]int{"Gold": 10, "Platinum": 10}, "PLN"))
	for _, tt := range []string{"Gold", "Platinum"} {
		if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": tt, "quantity": 10}); st != 204 {
			t.Fatalf("add 10 %s: %d %s", tt, st, b)
		}
	}
	if st, b := cust.do("GET", "/api/cart", nil); st != 200 || !strings.Contains(string(b), `"amount":2000000000`) {
		t.Errorf("GET /api/cart: %d %s, want a total of 2000000000", st, b)
	}
	if p := cust.page("/cart"); p.Status != 200 {
		t.Errorf("GET /cart answers %d", p.Status)
	}
	// A price change is bounded too, and changes nothing when refused.
	before := e.mark()
	st, b := org.do("PUT", "/api/concerts/"+concert+"/ticket-types", map[string]any{"ticketTypes": []map[string]any{
		{"name": "Gold", "price": map[string]any{"amount": int64(1) << 62, "currency": "PLN"}}}}, "If-Match", org.concertETag(concert))
	if e.settle(); st != http.StatusBadRequest || e.mark() != before {
		t.Errorf("a price of 2^62: %d %s, wrote %v", st, b, e.mark() != before)
	}
}

// Revenue is summed in SQL: with prices bounded, no organizer's sales
// come near overflowing int64. A price of 2^62 is refused (400); sales at
// the dearest price allowed are reported.
func TestPricesAreBoundedSoRevenueCannotOverflow(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	if st, b := org.do("POST", "/api/concerts", advBody("Pricey", map[string]int64{"Gold": 1 << 62}, map[string]int{"Gold": 10}, "PLN")); st != http.StatusBadRequest {
		t.Errorf("a ticket at 2^62 minor units: %d %s, want 400", st, b)
	}
	concert := advConcert(t, org, advBody("Pricey", map[string]int64{"Gold": 100_000_000}, map[string]int{"Gold": 20}, "PLN"))
	cust.purchase(concert, "Gold", 10)
	cust.purchase(concert, "Gold", 10)
	for _, path := range []string{"/api/organizer/revenue", "/api/concerts/" + concert + "/sales"} {
		if st, b := org.do("GET", path, nil); st != 200 {
			t.Errorf("GET %s: %d %s", path, st, b)
		}
	}
	if p := org.page("/organizer"); p.Status != 200 {
		t.Errorf("GET /organizer: %d", p.Status)
	}
}

// Capacities are bounded at the door (1,000,000 seats a ticket type,
// 10,000,000 a concert), so seats left are never summed past int64:
// MaxInt64 seats are refused (400), at creation and in a change.
func TestCapacitiesAreBoundedSoSeatsLeftCannotOverflow(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	types := func(n int, seats int) (map[string]int64, map[string]int) {
		prices, capacity := map[string]int64{}, map[string]int{}
		for i := range n {
			name := fmt.Sprintf("T%d", i)
			prices[name], capacity[name] = 100, seats
		}
		return prices, capacity
	}
	for _, c := range []struct{ types, seats int }{{2, math.MaxInt64}, {1, 1_000_001}, {11, 1_000_000}} {
		prices, capacity := types(c.types, c.seats)
		if st, b := org.do("POST", "/api/concerts", advBody("Huge", prices, capacity, "PLN")); st != http.StatusBadRequest {
			t.Errorf("%d ticket types of %d seats: %d %s, want 400", c.types, c.seats, st, b)
		}
	}
	prices, capacity := types(10, 1_000_000)
	concert := advConcert(t, org, advBody("Huge", prices, capacity, "PLN"))
	e.settle()
	st, b := org.do("GET", "/api/concerts/"+concert, nil)
	c := decodeJSON[struct {
		SeatsLeft int `json:"seatsLeft"`
	}](t, b)
	if st != 200 || c.SeatsLeft != 10_000_000 {
		t.Errorf("GET concert: %d seatsLeft %d, want 10000000", st, c.SeatsLeft)
	}
	small := advConcert(t, org, advBody("Small", map[string]int64{"A": 100, "B": 100}, map[string]int{"A": 5, "B": 5}, "PLN"))
	e.settle()
	for _, change := range []map[string]int{{"A": math.MaxInt64}, {"A": 1_000_001}} {
		before := e.mark()
		st, b := org.do("PUT", "/api/concerts/"+small+"/ticket-types", map[string]any{"capacity": change}, "If-Match", org.concertETag(small))
		if e.settle(); st != http.StatusBadRequest || e.mark() != before {
			t.Errorf("capacity %v: %d %s, wrote %v", change, st, b, e.mark() != before)
		}
	}
	before := e.mark()
	st, b = org.do("PUT", "/api/concerts/"+concert+"/ticket-types", map[string]any{"capacity": map[string]int{"T0": 1_000_000, "T1": 999_999}}, "If-Match", org.concertETag(concert))
	if e.settle(); st != 204 || e.mark() == before {
		t.Errorf("lowering a capacity of a full concert: %d %s", st, b)
	}
	st, b = org.do("PUT", "/api/concerts/"+concert+"/ticket-types", map[string]any{"capacity": map[string]int{"T1": 1_000_000}}, "If-Match", org.concertETag(concert))
	if st != 204 {
		t.Errorf("raising it back to 10,000,000 seats: %d %s", st, b)
	}
}

// Resending a ticket: not to any address as often as asked (a mail relay
// for spam). Five resends of a ticket are accepted (202), then each is
// refused (422).
func TestTicketResendIsBounded(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Resend")
	order := cust.purchase(concert, "Standing", 1)
	ticket := cust.ticketIDs(order)[0]
	var statuses []int
	for i := range 15 {
		st, _ := cust.do("POST", "/api/tickets/"+ticket+"/resend", map[string]any{"delivery": map[string]string{"method": "email", "email": fmt.Sprintf("stranger%d@example.org", i)}})
		statuses = append(statuses, st)
		e.settle()
	}
	for i, st := range statuses {
		if want := map[bool]int{true: http.StatusAccepted, false: http.StatusUnprocessableEntity}[i < 5]; st != want {
			t.Errorf("resend %d of one ticket: %d, want %d (all: %v)", i+1, st, want, statuses)
		}
	}
}

// A concert that has started is no longer on sale: it leaves the list, a
// ticket of it cannot be added to a cart (422), and an order of it placed
// from a cart filled before the start is rejected like a sold-out one,
// its lines back in the cart, nothing charged.
func TestAConcertThatHasStartedCannotBeBought(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	body := advBody("Soon", map[string]int64{"Standing": 100}, map[string]int{"Standing": 5}, "PLN")
	startsAt := time.Now().UTC().Add(3 * time.Second)
	body["startsAt"] = startsAt.Format(time.RFC3339Nano)
	concert := advConcert(t, org, body)
	for _, s := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/api/billing", map[string]string{"name": "Ala", "address": "Długa 1", "email": cust.Email}},
		{"POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1}},
		{"PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email}},
	} {
		if st, b := cust.do(s.method, s.path, s.body); st != 204 {
			t.Fatalf("%s %s before the start: %d %s", s.method, s.path, st, b)
		}
	}
	time.Sleep(time.Until(startsAt) + time.Second)
	e.settle()
	if _, list := cust.do("GET", "/api/concerts", nil); strings.Contains(string(list), concert) {
		t.Errorf("the started concert is still listed")
	}
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1}); st != http.StatusUnprocessableEntity {
		t.Errorf("add a ticket of a started concert: %d %s, want 422", st, b)
	}
	st, b := cust.do("POST", "/api/cart/checkout", nil)
	if st != http.StatusAccepted {
		t.Fatalf("checkout: %d %s", st, b)
	}
	id := decodeJSON[map[string]map[string]string](t, b)["orders"][concert]
	var status any
	e.eventually("order final", func() bool {
		_, o := cust.do("GET", "/api/orders/"+id, nil)
		status = decodeJSON[map[string]any](t, o)["status"]
		return status == "completed" || status == "rejected" || status == "cancelled"
	})
	if status != "rejected" {
		t.Fatalf("an order of a concert that started 1s ago is %v, want rejected", status)
	}
	e.eventually("the line back in the cart", func() bool {
		_, c := cust.do("GET", "/api/cart", nil)
		return strings.Contains(string(c), concert)
	})
	if n := e.Gateway.Captured(); n != 0 {
		t.Errorf("%d payments captured", n)
	}
}
