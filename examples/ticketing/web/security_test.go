package web_test

// Security tests: attacks through HTTP that the application withstands.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"esgo.dev/examples/ticketing/users"
)

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

// A weak ETag never matches in If-Match (RFC 9110 13.1.1: strong comparison).
func TestAdvIfMatchRefusesWeakETags(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Weak")
	e.settle()
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1})
	req, _ := http.NewRequest("GET", e.Server.URL+"/api/concerts/"+concert, nil)
	resp, _ := org.c.Do(req)
	resp.Body.Close()
	tag := resp.Header.Get("ETag")
	if tag == "" {
		t.Fatalf("no ETag: %d", resp.StatusCode)
	}
	st, b := org.do("PUT", "/api/concerts/"+concert+"/ticket-types",
		map[string]any{"ticketTypes": []map[string]any{{"name": "Seat", "price": map[string]any{"amount": 1, "currency": "PLN"}}}}, "If-Match", "W/"+tag)
	if st != 412 {
		t.Errorf("If-Match W/%s (weak) on ticket types: %d %s, want 412", tag, st, b)
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
		t.Errorf("weak ETag W/%s in If-Match was accepted (%d): RFC 9110 says If-Match uses the strong comparison", cur, st)
	}
	for _, h := range []string{"*", `"99999"`, `"-1"`, `"1", "2"`, `""`, `"9223372036854775807"`, `"1e3"`, "garbage"} {
		if st, b := cust.do("PUT", line, map[string]int{"quantity": 4}, "If-Match", h); st >= 500 || st == 204 && h != "*" || st != 204 && h == "*" {
			t.Errorf("If-Match %s: %d %s (\"*\" matches the cart that exists; nothing else does)", h, st, b)
		}
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

var methodLabel = regexp.MustCompile(`http_requests_total\{code="[0-9]+",method="([^"]*)"`)

// Registration keys are one space for all anonymous clients: two people
// whose clients pick the same Idempotency-Key.
func TestAdvRegistrationKeysOfTwoStrangers(t *testing.T) {
	e := newEnv(t)
	st1, b1 := e.anonymous().do("POST", "/api/users", map[string]string{"email": "one@example.com", "name": "One", "password": "password one"}, "Idempotency-Key", "1")
	st2, b2 := e.anonymous().do("POST", "/api/users", map[string]string{"email": "two@example.com", "name": "Two", "password": "password two"}, "Idempotency-Key", "1")
	if st1 != 201 || st2 != 201 {
		t.Errorf("two strangers registering with key \"1\": %d %s / %d %s", st1, b1, st2, b2)
	}
	// The same key and address with another password: refused, without
	// the ID of the account made first.
	st3, b3 := e.anonymous().do("POST", "/api/users", map[string]string{"email": "one@example.com", "name": "One", "password": "another password"}, "Idempotency-Key", "1")
	id := decodeJSON[map[string]string](t, b1)["id"]
	if st3 != 409 && st3 != 422 || id == "" || strings.Contains(string(b3), id) {
		t.Errorf("a third registration with key \"1\" and the first address: %d %s (first ID %s)", st3, b3, id)
	}
}

// A client picks its X-Correlation-ID; it must not be able to take over
// what the explorer's search finds for a stream ID an admin looks up.
func TestAdvCorrelationIDCannotShadowAStreamInTheExplorerSearch(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Shadow")
	stream := "concert-" + concert
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1},
		"X-Correlation-ID", stream); st != 204 {
		t.Fatalf("%d %s", st, b)
	}
	e.settle()
	c := *admin.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(e.Server.URL + "/explorer/search?q=" + stream)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/explorer/streams/") {
		t.Errorf("admin searches for stream %s and is sent to %q: the customer's request, which chose that string as its correlation ID", stream, loc)
	}
	// An order ID is a UUID, which a client may send as its correlation
	// ID: the search still finds the order's purchase.
	order := cust.purchase(concert, "Standing", 1)
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1},
		"X-Correlation-ID", order); st != 204 {
		t.Fatalf("%d %s", st, b)
	}
	e.settle()
	resp, err = c.Get(e.Server.URL + "/explorer/search?q=" + order)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc == "/explorer/correlations/"+order || !strings.HasPrefix(loc, "/explorer/correlations/") {
		t.Errorf("admin searches for order %s and is sent to %q, not to the purchase that placed it", order, loc)
	}
}

// RFC 9110 13.1.1: a server must not perform a method whose If-Match is
// false. Checkout and add-to-cart take no notice of it: a checkout sent
// with the ETag of the cart the buyer saw buys a cart changed since.
func TestAdvCheckoutHonoursIfMatch(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Tabs")
	cust.do("PUT", "/api/billing", map[string]string{"name": "Ala", "address": "Długa 1", "email": cust.Email})
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1})
	cust.do("PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email})
	req, _ := http.NewRequest("GET", e.Server.URL+"/api/cart", nil)
	resp, _ := cust.c.Do(req)
	resp.Body.Close()
	seen := resp.Header.Get("ETag")
	// another tab adds 9 seats
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 9})
	if st, b := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1}, "If-Match", seen); st != 412 {
		t.Errorf("add to cart with a stale If-Match %s: %d %s", seen, st, b)
	}
	st, b := cust.do("POST", "/api/cart/checkout", nil, "If-Match", seen)
	if st != 412 {
		t.Errorf("checkout with the stale If-Match %s of a 1-ticket cart: %d %s (bought the 9 seats added since)", seen, st, b)
	}
	// With the ETag of the cart as it is, the checkout goes through, and
	// its retry answers the same orders.
	req, _ = http.NewRequest("GET", e.Server.URL+"/api/cart", nil)
	resp, _ = cust.c.Do(req)
	resp.Body.Close()
	cur := resp.Header.Get("ETag")
	st1, b1 := cust.do("POST", "/api/cart/checkout", nil, "If-Match", cur, "Idempotency-Key", "buy")
	st2, b2 := cust.do("POST", "/api/cart/checkout", nil, "If-Match", cur, "Idempotency-Key", "buy")
	if st1 != 202 || st2 != 202 || !bytes.Equal(b1, b2) {
		t.Errorf("checkout with the current If-Match %s, twice: %d %s / %d %s", cur, st1, b1, st2, b2)
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
	first := concertBody("First")
	st1, b1 := org.do("POST", "/api/concerts", first, "Idempotency-Key", "c")
	st2, b2 := org.do("POST", "/api/concerts", concertBody("Second, different"), "Idempotency-Key", "c")
	if st1 == 201 && st2 == 201 && bytes.Equal(b1, b2) {
		t.Errorf("create concert \"Second\" with a reused key answered 201 with the first concert's ID %s", b2)
	}
	if st2 != 422 || !strings.Contains(string(b2), "Idempotency-Key already used for a different request") {
		t.Errorf("a reused key with another body: %d %s, want 422 saying so", st2, b2)
	}
	// The same request again is a repeat, answered as the first.
	if st3, b3 := org.do("POST", "/api/concerts", first, "Idempotency-Key", "c"); st3 != 201 || !bytes.Equal(b1, b3) {
		t.Errorf("a retry: %d %s, want 201 %s", st3, b3, b1)
	}
}
