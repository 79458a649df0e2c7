//go:build adversarial

package web_test

// Adversarial tests: attacks through HTTP on the web application. Each
// test states what the application promises; a failing test is a finding.
// Run: go test -race -run 'Adv' -tags adversarial ./examples/ticketing/web/

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
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

// An Idempotency-Key names one command; reusing it for a change of ANOTHER
// user's role must not answer 204 while changing nothing.
func TestAdvIdempotencyKeyReusedOnAnotherTargetIsNotASilentNoop(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	a := e.newUser("alice", users.Customer)
	b := e.newUser("bob", users.Customer)
	if st, body := admin.do("PUT", "/api/users/"+a.ID+"/role", map[string]string{"role": "organizer"}, "Idempotency-Key", "k1"); st != 204 {
		t.Fatalf("first: %d %s", st, body)
	}
	before := e.mark()
	st, body := admin.do("PUT", "/api/users/"+b.ID+"/role", map[string]string{"role": "organizer"}, "Idempotency-Key", "k1")
	after := e.mark()
	// bob's session: is bob an organizer now?
	_, who := b.do("GET", "/api/session", nil)
	role := decodeJSON[map[string]any](t, who)["role"]
	if st == 204 && role != "organizer" {
		t.Errorf("PUT /api/users/%s/role with a reused key answered 204 %s, but bob is still %v (events %d->%d)", b.ID[:8], body, role, before.head, after.head)
	}
}

// The same key with a different body: the second request is answered as
// if it succeeded, yet nothing of it is done.
func TestAdvIdempotencyKeyReusedWithADifferentBodyIsRefused(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Key Night")
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1},
		"Idempotency-Key", "same"); st != 204 {
		t.Fatalf("%d %s", st, b)
	}
	st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 3},
		"Idempotency-Key", "same")
	_, cart := cust.do("GET", "/api/cart", nil)
	if st < 400 && !strings.Contains(string(cart), `"Seat"`) {
		t.Errorf("a reused key with another body answered %d %s, but the cart has no Seat line: %s", st, b, cart)
	}
	// The concert create is the worse case: the organizer is told 201 for a
	// concert that is the old one.
	st1, b1 := org.do("POST", "/api/concerts", concertBody("First"), "Idempotency-Key", "c")
	st2, b2 := org.do("POST", "/api/concerts", concertBody("Second, different"), "Idempotency-Key", "c")
	if st1 == 201 && st2 == 201 && bytes.Equal(b1, b2) {
		t.Errorf("create concert \"Second\" with a reused key answered 201 with the first concert's ID %s", b2)
	}
}

// The gate: two different tickets scanned with one Idempotency-Key. The
// second must not be "admitted" by replaying the first one's admission.
func TestAdvScanKeyReuseDoesNotAdmitASecondTicket(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Gate Night")
	order := cust.purchase(concert, "Standing", 2)
	ids := cust.ticketIDs(order)
	if len(ids) != 2 {
		t.Fatalf("tickets %v", ids)
	}
	c1, c2 := cust.ticketCode(ids[0]), cust.ticketCode(ids[1])
	if st, b := org.do("POST", "/api/concerts/"+concert+"/scans", map[string]string{"code": c1, "gate": "A"}, "Idempotency-Key", "scan"); st != 200 {
		t.Fatalf("scan 1: %d %s", st, b)
	}
	st, b := org.do("POST", "/api/concerts/"+concert+"/scans", map[string]string{"code": c2, "gate": "A"}, "Idempotency-Key", "scan")
	if st == 200 && !strings.Contains(string(b), ids[1]) {
		t.Errorf("ticket 2 scanned with a reused key: 200 %s (the first ticket's admission; ticket 2 not marked used)", b)
	}
}

// Failed log-ins sent at once must still be limited to LoginFailures.
func TestAdvLoginRateLimitHoldsUnderConcurrency(t *testing.T) {
	e := newEnv(t)
	victim := e.newUser("victim", users.Customer)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.anonymous()
			st, err := c.send("POST", "/api/session", map[string]string{"email": victim.Email, "password": fmt.Sprintf("wrong-%d-xxxx", i)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[401] > 5 {
		t.Errorf("40 concurrent wrong passwords: %d were checked (401), limit is 5; statuses %v", counts[401], counts)
	}
}

// A successful log-in (the attacker's own account) must not reset the
// failures counted against the client address: else one address sprays
// passwords over many accounts without end.
func TestAdvLoginRateLimitPerAddressIsNotResetByOwnLogIn(t *testing.T) {
	e := newEnv(t)
	own := e.newUser("attacker", users.Customer)
	var victims []*user
	for i := range 5 {
		victims = append(victims, e.newUser(fmt.Sprintf("v%d", i), users.Customer))
	}
	failures := 0
	for round := range 5 {
		for _, v := range victims[:4] {
			st, body := e.anonymous().do("POST", "/api/session", map[string]string{"email": v.Email, "password": fmt.Sprintf("guess-%d-xxxx", round)})
			if st == 429 {
				return // held
			}
			if st != 401 {
				t.Fatalf("%d %s", st, body)
			}
			failures++
		}
		// the attacker logs in with their own account from the same address
		if st, body := e.anonymous().do("POST", "/api/session", map[string]string{"email": own.Email, "password": "correct horse battery"}); st != 200 {
			t.Fatalf("own log-in: %d %s", st, body)
		}
	}
	t.Errorf("one client address made %d failed log-ins over 4 accounts without a 429 (limit 5), by logging into its own account in between", failures)
}

var methodLabel = regexp.MustCompile(`http_requests_total\{code="[0-9]+",method="([^"]*)"`)

// /metrics labels must stay few whatever clients send.
func TestAdvMetricsCardinalityByArbitraryMethods(t *testing.T) {
	e := newEnv(t)
	anon := e.anonymous()
	for i := range 30 {
		anon.raw(fmt.Sprintf("BOGUS%d", i), "/", "", nil)
	}
	_, body := anon.do("GET", "/metrics", nil)
	seen := map[string]bool{}
	for _, m := range methodLabel.FindAllStringSubmatch(string(body), -1) {
		seen[m[1]] = true
	}
	if len(seen) > 12 {
		t.Errorf("30 requests with made-up methods made %d method label values in /metrics", len(seen))
	}
}

// A cart whose total does not fit in int64 minor units: the add must be
// refused, and the cart must stay viewable (no 4xx on GET, no 500 page).
func TestAdvCartTotalOverflow(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := advConcert(t, org, advBody("Pricey", map[string]int64{"Gold": math.MaxInt64 / 2}, map[string]int{"Gold": 10}, "PLN"))
	st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Gold", "quantity": 3})
	stCart, cart := cust.do("GET", "/api/cart", nil)
	p := cust.page("/cart")
	t.Logf("add %d %s; GET cart %d %s; page %d", st, b, stCart, cart, p.Status)
	if st == 204 && stCart != 200 {
		t.Errorf("an add whose total overflows was accepted (204), then GET /api/cart answers %d %s", stCart, cart)
	}
	if p.Status >= 500 {
		t.Errorf("GET /cart answers %d after the add", p.Status)
	}
}

// Revenue is summed in SQL: two captured payments whose sum overflows
// int64 must not turn the organizer's revenue into a 500.
func TestAdvOrganizerRevenueOverflow(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := advConcert(t, org, advBody("Pricey", map[string]int64{"Gold": 1 << 62}, map[string]int{"Gold": 10}, "PLN"))
	cust.purchase(concert, "Gold", 1)
	cust.purchase(concert, "Gold", 1)
	for _, path := range []string{"/api/organizer/revenue", "/api/concerts/" + concert + "/sales"} {
		if st, b := org.do("GET", path, nil); st >= 500 {
			t.Errorf("GET %s: %d %s", path, st, b)
		}
	}
	if p := org.page("/organizer"); p.Status >= 500 {
		t.Errorf("GET /organizer: %d", p.Status)
	}
}

// Seats left never go negative by summing huge capacities.
func TestAdvSeatsLeftOverflow(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	concert := advConcert(t, org, advBody("Huge", map[string]int64{"A": 100, "B": 100}, map[string]int{"A": math.MaxInt64, "B": math.MaxInt64}, "PLN"))
	e.settle()
	st, b := org.do("GET", "/api/concerts/"+concert, nil)
	c := decodeJSON[struct {
		SeatsLeft int `json:"seatsLeft"`
	}](t, b)
	if st != 200 || c.SeatsLeft < 0 {
		t.Errorf("GET concert: %d seatsLeft %d (capacities MaxInt64 each were accepted)", st, c.SeatsLeft)
	}
}

// ISO 4217: a made-up code is not a currency.
func TestAdvUnknownCurrencyIsRefused(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	st, b := org.do("POST", "/api/concerts", advBody("Zorkmids", map[string]int64{"A": 100}, map[string]int{"A": 5}, "ZZZ"))
	if st == 201 {
		t.Errorf("a concert priced in ZZZ was created: %s", b)
	}
}

// A ticket type the organizer may name must be one a buyer can change and
// remove from the cart.
func TestAdvLongTicketTypeNameCanBeRemovedFromTheCart(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	name := strings.Repeat("VIP ", 30) // 120 bytes
	concert := advConcert(t, org, advBody("Long", map[string]int64{name: 100}, map[string]int{name: 5}, "PLN"))
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": name, "quantity": 1}); st != 204 {
		t.Fatalf("add: %d %s", st, b)
	}
	path := "/api/cart/items/" + concert + "/" + strings.ReplaceAll(name, " ", "%20")
	if st, b := cust.do("DELETE", path, nil); st != 204 {
		t.Errorf("a line added with a 120-byte ticket type cannot be removed: DELETE %d %s", st, b)
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

// If-Match: RFC 9110 uses the strong comparison for If-Match, so a weak
// ETag never matches; a stale ETag is 412 even when the change would be a
// no-op on the newer state.
func TestAdvIfMatchEdgeCases(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("ETag Night")
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1})
	req, _ := http.NewRequest("GET", e.Server.URL+"/api/cart", nil)
	resp, err := cust.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tag := resp.Header.Get("ETag")
	line := "/api/cart/items/" + concert + "/Standing"
	// another tab changes the quantity to 2
	if st, b := cust.do("PUT", line, map[string]int{"quantity": 2}); st != 204 {
		t.Fatalf("%d %s", st, b)
	}
	// the stale tab sets 2 as well: the state it saw was 1
	before := e.mark()
	if st, b := cust.do("PUT", line, map[string]int{"quantity": 2}, "If-Match", tag); st != 412 {
		t.Errorf("stale If-Match %s with a change that is a no-op on the newer state: %d %s (want 412)", tag, st, b)
	}
	_ = before
	// Weak ETag of the current version
	req, _ = http.NewRequest("GET", e.Server.URL+"/api/cart", nil)
	resp, _ = cust.c.Do(req)
	resp.Body.Close()
	cur := resp.Header.Get("ETag")
	if st, _ := cust.do("PUT", line, map[string]int{"quantity": 3}, "If-Match", "W/"+cur); st != 412 {
		t.Logf("weak ETag W/%s in If-Match was accepted (%d): RFC 9110 says If-Match uses the strong comparison", cur, st)
	}
	for _, h := range []string{"*", `"99999"`, `"-1"`, `"1", "2"`, `""`, `"9223372036854775807"`, `"1e3"`, "garbage"} {
		if st, b := cust.do("PUT", line, map[string]int{"quantity": 4}, "If-Match", h); st >= 500 || st == 204 && h != "*" {
			t.Errorf("If-Match %s: %d %s", h, st, b)
		}
	}
}

// Concurrent checkouts of one cart with different keys: one order.
func TestAdvConcurrentCheckoutsPlaceOneOrder(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Rush")
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 2})
	cust.do("PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email})
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.Server.URL+"/api/cart/checkout", nil)
			req.Header.Set("Idempotency-Key", fmt.Sprintf("co-%d", i))
			resp, err := cust.c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			counts[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	e.settle()
	_, b := cust.do("GET", "/api/orders", nil)
	if n := len(decodeJSON[[]map[string]any](t, b)); n != 1 || counts[202] != 1 || counts[500] > 0 {
		t.Errorf("8 concurrent checkouts: statuses %v, %d orders", counts, n)
	}
}

// Cross-origin state changes are refused and write nothing.
func TestAdvCrossOriginRequestsAreRefused(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("CSRF")
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1})
	cust.do("PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email})
	e.settle()
	item := []byte(`{"concertId":"` + concert + `","ticketType":"Standing","quantity":1}`)
	cases := []struct {
		name, method, path, ctype string
		body                      []byte
		h                         []string
	}{
		{"checkout cross-site", "POST", "/api/cart/checkout", "", nil, []string{"Sec-Fetch-Site", "cross-site"}},
		{"checkout same-site", "POST", "/api/cart/checkout", "", nil, []string{"Sec-Fetch-Site", "same-site"}},
		{"checkout foreign origin", "POST", "/api/cart/checkout", "", nil, []string{"Origin", "https://evil.example"}},
		{"checkout null origin", "POST", "/api/cart/checkout", "", nil, []string{"Origin", "null"}},
		{"add text/plain cross-site", "POST", "/api/cart/items", "text/plain", item, []string{"Sec-Fetch-Site", "cross-site"}},
		{"logout cross-site", "DELETE", "/api/session", "", nil, []string{"Sec-Fetch-Site", "cross-site"}},
		{"method override", "GET", "/api/cart/checkout", "", nil, []string{"X-HTTP-Method-Override", "POST"}},
		{"form post", "POST", "/api/cart/checkout", "application/x-www-form-urlencoded", []byte("_method=POST"), []string{"Origin", "https://evil.example"}},
	}
	for _, c := range cases {
		before := e.mark()
		st, b := cust.raw(c.method, c.path, c.ctype, c.body, c.h...)
		e.settle()
		if st < 400 || e.mark() != before {
			t.Errorf("%s: %d %s, wrote %v -> %v", c.name, st, b, before, e.mark())
		}
	}
	if st, _ := cust.do("GET", "/api/session", nil); st != 200 {
		t.Errorf("the cross-site log-out logged out: %d", st)
	}
}

// Sessions: the cookie's flags; a token is useless after log-out; a token
// chosen by an attacker before log-in is not adopted.
func TestAdvSessionLifecycle(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("u", users.Customer)
	anon := e.anonymous()
	raw := anon.c
	req, _ := http.NewRequest("POST", e.Server.URL+"/api/session", strings.NewReader(`{"email":"`+u.Email+`","password":"correct horse battery"}`))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(&http.Cookie{Name: "__Host-session", Value: "attacker-chosen"})
	resp, err := raw.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sc := resp.Header.Get("Set-Cookie")
	for _, f := range []string{"__Host-session=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(sc, f) {
			t.Errorf("Set-Cookie %q lacks %s", sc, f)
		}
	}
	if strings.Contains(sc, "attacker-chosen") || strings.Contains(sc, "Domain=") {
		t.Errorf("Set-Cookie %q", sc)
	}
	token := strings.TrimPrefix(strings.SplitN(sc, ";", 2)[0], "__Host-session=")
	withToken := func(tok string) int {
		r, _ := http.NewRequest("GET", e.Server.URL+"/api/session", nil)
		r.Header.Set("Cookie", "__Host-session="+tok)
		resp, err := e.Server.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := withToken(token); st != 200 {
		t.Fatalf("token: %d", st)
	}
	if st := withToken("attacker-chosen"); st != 401 {
		t.Errorf("attacker's token: %d", st)
	}
	r, _ := http.NewRequest("DELETE", e.Server.URL+"/api/session", nil)
	r.Header.Set("Cookie", "__Host-session="+token)
	resp, _ = e.Server.Client().Do(r)
	resp.Body.Close()
	if st := withToken(token); st != 401 {
		t.Errorf("token after log-out: %d", st)
	}
	// weird cookies
	for _, tok := range []string{strings.Repeat("A", 5000), "%00", "a\"b", "' OR 1=1 --"} {
		if st := withToken(tok); st != 401 {
			t.Errorf("token %.20q: %d", tok, st)
		}
	}
}

// User-controlled strings are escaped on every page.
func TestAdvPagesEscapeUserStrings(t *testing.T) {
	e := newEnv(t)
	payload := `<script>alert(1)</script>"'><img src=x onerror=alert(2)>`
	org := e.newUser("org", users.Organizer)
	admin := e.newUser("admin", users.Admin)
	st, b := e.anonymous().do("POST", "/api/users", map[string]string{"email": "xss@example.com", "name": payload, "password": "correct horse battery"})
	if st != 201 {
		t.Fatalf("register: %d %s", st, b)
	}
	cust := e.anonymous()
	cust.do("POST", "/api/session", map[string]string{"email": "xss@example.com", "password": "correct horse battery"})
	body := advBody(payload, map[string]int64{payload: 100}, map[string]int{payload: 5}, "PLN")
	body["artist"], body["venue"] = payload, payload
	concert := advConcert(t, org, body)
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": payload, "quantity": 1})
	cust.do("PUT", "/api/cart/delivery", map[string]any{"method": "courier", "address": map[string]string{"name": payload, "street": payload, "city": payload, "postalCode": "00-001", "country": "PL"}})
	e.settle()
	for _, c := range []struct {
		u    *user
		path string
	}{{cust, "/"}, {cust, "/concerts/" + concert}, {cust, "/cart"}, {org, "/organizer"}, {admin, "/admin/users"},
		{admin, "/explorer/streams/concert-" + concert}, {admin, "/explorer/streams/cart-" + concert}, {e.anonymous(), "/login?next=" + payload},
		{admin, "/explorer?category=" + payload}, {admin, "/explorer/search?q=" + payload}, {admin, "/explorer/streams/" + payload}} {
		r, _ := http.NewRequest("GET", e.Server.URL+strings.ReplaceAll(c.path, " ", "%20"), nil)
		r.URL.RawQuery = r.URL.Query().Encode()
		resp, err := c.u.c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("%s: %d", c.path, resp.StatusCode)
		}
		if strings.Contains(string(page), "<script>alert") || strings.Contains(string(page), "<img src=x") {
			t.Errorf("%s renders the payload unescaped", c.path)
		}
	}
}

// Hunting 5xx with odd paths and IDs.
func TestAdvOddPathsNever5xx(t *testing.T) {
	e := newEnv(t)
	cust := e.newUser("cust", users.Customer)
	org := e.newUser("org", users.Organizer)
	admin := e.newUser("admin", users.Admin)
	long := strings.Repeat("a", 5000)
	paths := []string{"/api/orders/..%2F..%2Fetc", "/api/orders/%00", "/api/concerts/" + long, "/concerts/" + long, "/concerts/%ff%fe",
		"/api/concerts/%E2%80%AE", "/orders/" + long, "/tickets/%00", "/api/tickets/00000000-0000-0000-0000-000000000000/qr.png",
		"/explorer/streams/" + long, "/explorer/correlations/" + long, "/explorer/streams/x?from=99999999999999999999", "/explorer?after=%ff",
		"/explorer/streams/cart-x?from=9223372036854775807", "/static/../web.go", "/static/%2e%2e/web.go", "/api/invoices/" + long}
	for _, u := range []*user{cust, org, admin} {
		for _, p := range paths {
			if st, b := u.raw("GET", p, "", nil); st >= 500 {
				t.Errorf("GET %.80s: %d %.200s", p, st, b)
			}
		}
	}
}

// Bodies: deep nesting, duplicate keys, chunked without length, gzip.
func TestAdvBodiesOddButBounded(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Bodies")
	e.settle()
	before := e.mark()
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	st, _ := cust.raw("POST", "/api/cart/items", "application/json", []byte(deep))
	if st != 400 && st != 413 {
		t.Errorf("deep nesting: %d", st)
	}
	// duplicate keys: the last wins in encoding/json; quantity 1 then 10
	dup := `{"concertId":"` + concert + `","ticketType":"Standing","quantity":1,"quantity":999}`
	if st, b := cust.raw("POST", "/api/cart/items", "application/json", []byte(dup)); st < 400 {
		t.Logf("duplicate keys accepted: %d %s", st, b)
	}
	// chunked, huge, no Content-Length
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"concertId":"`))
		for range 200 {
			pw.Write(bytes.Repeat([]byte("a"), 1024))
		}
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", e.Server.URL+"/api/cart/items", pr)
	req.Header.Set("Content-Type", "application/json")
	resp, err := cust.c.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("chunked 200 KiB: %d", resp.StatusCode)
		}
	}
	if st, _ := cust.raw("POST", "/api/cart/items", "application/json", []byte{0x1f, 0x8b, 0, 0}, "Content-Encoding", "gzip"); st != 400 {
		t.Errorf("gzip: %d", st)
	}
	for _, q := range []string{"1e9", "-1", "0", "1.5", `"2"`, "9223372036854775808", "null", "true"} {
		if st, b := cust.raw("POST", "/api/cart/items", "application/json",
			[]byte(`{"concertId":"`+concert+`","ticketType":"Standing","quantity":`+q+`}`)); st != 400 {
			t.Errorf("quantity %s: %d %s", q, st, b)
		}
	}
	e.settle()
	if e.mark() != before {
		t.Errorf("refused bodies wrote: %v -> %v", before, e.mark())
	}
}

// The explorer is admins' only; its responses hold other people's data and
// must not be cached; its JSON holds no password hash.
func TestAdvExplorerAndTicketResponsesAreNotCacheable(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Cache")
	order := cust.purchase(concert, "Standing", 1)
	ticket := cust.ticketIDs(order)[0]
	check := func(u *user, path string) {
		r, _ := http.NewRequest("GET", e.Server.URL+path, nil)
		resp, err := u.c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "$2a$") {
			t.Errorf("%s shows a bcrypt hash", path)
		}
		if !strings.Contains(resp.Header.Get("Cache-Control"), "no-store") && !strings.Contains(resp.Header.Get("Cache-Control"), "private") {
			t.Errorf("%s (%d) holds private data (ticket codes, billing) but has Cache-Control %q", path, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	check(admin, "/explorer/streams/user-"+cust.ID)
	check(admin, "/api/explorer/streams/user-"+cust.ID)
	check(cust, "/api/tickets/"+ticket)
	for _, u := range []*user{cust, org, e.anonymous()} {
		if st, _ := u.do("GET", "/api/explorer/streams/user-"+cust.ID, nil); st != 401 && st != 403 {
			t.Errorf("non-admin reads the explorer: %d", st)
		}
	}
}

// Registration tells whether an e-mail address has an account.
func TestAdvRegistrationDoesNotEnumerateEmails(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("known", users.Customer)
	st, b := e.anonymous().do("POST", "/api/users", map[string]string{"email": strings.ToUpper(u.Email), "name": "x", "password": "another password"})
	if st == http.StatusConflict {
		t.Logf("registration of a taken address answers 409 %s: it tells who has an account (log-in does not)", b)
	}
	// log-in: same message and status for unknown address and wrong password
	st1, b1 := e.anonymous().do("POST", "/api/session", map[string]string{"email": u.Email, "password": "wrong password"})
	st2, b2 := e.anonymous().do("POST", "/api/session", map[string]string{"email": "nobody@example.com", "password": "wrong password"})
	if st1 != st2 || !bytes.Equal(b1, b2) {
		t.Errorf("log-in tells accounts apart: %d %s vs %d %s", st1, b1, st2, b2)
	}
}

// Limits of login input: the per-e-mail limit is keyed as the app
// normalises, so variants of one address share it.
func TestAdvLoginLimitPerEmailAcrossAddresses(t *testing.T) {
	e := newEnv(t)
	victim := e.newUser("victim", users.Customer)
	variants := []string{victim.Email, strings.ToUpper(victim.Email), " " + victim.Email + " ", "\t" + victim.Email, victim.Email + "\n"}
	n := 0
	for i := range 12 {
		body := fmt.Sprintf(`{"email":%q,"password":"wrong-pass-%d"}`, variants[i%len(variants)], i)
		r := httptest.NewRequest("POST", "https://example.com/api/session", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.RemoteAddr = fmt.Sprintf("10.0.0.%d:1234", i+1) // a new client address each time
		w := httptest.NewRecorder()
		e.Web.ServeHTTP(w, r)
		if w.Code == 401 {
			n++
		}
	}
	if n > 5 {
		t.Errorf("%d password guesses for one account from many addresses (limit 5)", n)
	}
}
