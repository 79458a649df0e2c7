//go:build adversarial

package web_test

// Adversarial tests: attacks through HTTP on the web application. Each
// test states what the application promises; a failing test is a finding.
// Run: go test -race -run 'Adv' -tags adversarial ./examples/ticketing/web/

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/examples/ticketing/web"

	"esgo.dev/examples/ticketing/users"
)

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

// Seats: many buyers at once for the last seats never oversell.
func TestAdvNoOversellUnderConcurrentPurchases(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	concert := advConcert(t, org, advBody("Tiny", map[string]int64{"Standing": 100}, map[string]int{"Standing": 3}, "PLN"))
	var buyers []*user
	for i := range 8 {
		u := e.newUser(fmt.Sprintf("b%d", i), users.Customer)
		for _, s := range []struct {
			m, p string
			b    any
		}{
			{"PUT", "/api/billing", map[string]string{"name": "Ala", "address": "Długa 1", "email": u.Email}},
			{"POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1}},
			{"PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": u.Email}},
		} {
			if st, b := u.do(s.m, s.p, s.b); st != 204 {
				t.Fatalf("%s %s: %d %s", s.m, s.p, st, b)
			}
		}
		buyers = append(buyers, u)
	}
	var wg sync.WaitGroup
	for _, u := range buyers {
		wg.Add(1)
		go func() { defer wg.Done(); u.send("POST", "/api/cart/checkout", nil) }()
	}
	wg.Wait()
	e.settle()
	time.Sleep(500 * time.Millisecond)
	e.settle()
	tickets := 0
	for _, u := range buyers {
		_, b := u.do("GET", "/api/tickets", nil)
		tickets += len(decodeJSON[[]map[string]any](t, b))
	}
	st, b := org.do("GET", "/api/concerts/"+concert, nil)
	if tickets > 3 {
		t.Errorf("capacity 3, %d tickets issued; concert %d %s", tickets, st, b)
	}
}

// A demoted admin loses the explorer at once, on the session it has.
func TestAdvRoleChangeTakesEffectOnLiveSessions(t *testing.T) {
	e := newEnv(t)
	a1 := e.newUser("a1", users.Admin)
	a2 := e.newUser("a2", users.Admin)
	if st, _ := a2.do("GET", "/api/explorer/streams", nil); st != 200 {
		t.Fatalf("admin explorer: %d", st)
	}
	if st, b := a1.do("PUT", "/api/users/"+a2.ID+"/role", map[string]string{"role": "customer"}); st != 204 {
		t.Fatalf("demote: %d %s", st, b)
	}
	for _, p := range []string{"/api/explorer/streams", "/api/users", "/explorer"} {
		if st, _ := a2.raw("GET", p, "", nil); st != 403 {
			t.Errorf("demoted admin GET %s: %d", p, st)
		}
	}
	// and an organizer demoted to customer cannot manage its concert
	org := e.newUser("org", users.Organizer)
	concert := org.createConcert("Demoted")
	a1.do("PUT", "/api/users/"+org.ID+"/role", map[string]string{"role": "customer"})
	before := e.mark()
	if st, _ := org.do("POST", "/api/concerts/"+concert+"/cancel", map[string]string{"reason": "x"}); st != 403 {
		t.Errorf("demoted organizer cancels: %d", st)
	}
	if e.mark() != before {
		t.Errorf("wrote")
	}
}

// Cancelling one unpaid order many times at once refunds/cancels once and
// never 5xx.
func TestAdvConcurrentCancelsOfOneOrder(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Cancel")
	order := cust.purchase(concert, "Standing", 1)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _ := cust.send("POST", "/api/orders/"+order+"/cancel", map[string]string{"reason": "x"})
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[500] > 0 || counts[204] > 0 {
		t.Errorf("cancels of a completed order: %v", counts)
	}
}

// Passwords never reach the log; a path cannot forge a log line.
func TestAdvLogsHoldNoPasswordsAndNoInjectedLines(t *testing.T) {
	var buf syncBuffer
	e := newEnv(t, func(c *web.Config) {
		c.Logger = slog.New(web.LogHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	})
	anon := e.anonymous()
	anon.do("POST", "/api/users", map[string]string{"email": "pw@example.com", "name": "P", "password": "Sekret-Pass-One"}, "Idempotency-Key", "r1")
	anon.do("POST", "/api/users", map[string]string{"email": "pw@example.com", "name": "P", "password": "Sekret-Pass-Two"}, "Idempotency-Key", "r1")
	anon.do("POST", "/api/session", map[string]string{"email": "pw@example.com", "password": "Sekret-Pass-Three"})
	anon.raw("POST", "/api/session", "application/json", []byte(`{"email":"pw@example.com","password":"Sekret-Pass-Four"`))
	anon.raw("POST", "/api/session?password=Sekret-Pass-Five", "application/json", []byte(`{}`))
	anon.do("POST", "/api/session", map[string]string{"email": "pw@example.com", "password": "Sekret-Pass-One"})
	anon.raw("GET", "/x%0Atime=2026-01-01T00:00:00Z%20level=ERROR%20msg=injected", "", nil)
	anon.raw("GET", "/x%0D%0Alevel=ERROR", "", nil)
	out := buf.String()
	if strings.Contains(out, "Sekret-Pass") {
		t.Errorf("a password is in the log:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "time=2026-01-01") || strings.HasPrefix(l, "level=ERROR") {
			t.Errorf("injected log line: %q", l)
		}
	}
}

// Cancelling a concert refunds every paid order exactly: the money back
// is the money taken, in its currency.
func TestAdvConcertCancellationRefundsExactly(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := advConcert(t, org, advBody("Refund", map[string]int64{"A": 12345, "B": 99999}, map[string]int{"A": 5, "B": 5}, "EUR"))
	order := cust.purchase(concert, "A", 3)
	if st, b := org.do("POST", "/api/concerts/"+concert+"/cancel", map[string]string{"reason": "rain"}); st != 204 {
		t.Fatalf("cancel: %d %s", st, b)
	}
	var pay map[string]any
	e.eventually("refund", func() bool {
		_, b := cust.do("GET", "/api/payments", nil)
		ps := decodeJSON[[]map[string]any](t, b)
		if len(ps) != 1 {
			return false
		}
		pay = ps[0]
		r := pay["refunded"].(map[string]any)
		return r["amount"].(float64) > 0
	})
	e.settle()
	_, b := cust.do("GET", "/api/payments", nil)
	pay = decodeJSON[[]map[string]any](t, b)[0]
	amt, ref := pay["amount"].(map[string]any), pay["refunded"].(map[string]any)
	if amt["amount"].(float64) != 3*12345 || ref["amount"] != amt["amount"] || ref["currency"] != "EUR" {
		t.Errorf("payment %v", pay)
	}
	_, inv := cust.do("GET", "/api/invoices/"+order, nil)
	if !strings.Contains(string(inv), `"creditNotes"`) {
		t.Errorf("invoice after refund has no credit note: %s", inv)
	}
	_, rev := org.do("GET", "/api/organizer/revenue", nil)
	if !strings.Contains(string(rev), `"net":{"amount":0`) {
		t.Errorf("revenue after a full refund: %s", rev)
	}
	// the cancelled concert cannot be put in a cart again
	if st, _ := cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "A", "quantity": 1}); st != 422 {
		t.Errorf("add of a cancelled concert: %d", st)
	}
}

// A line of a concert cancelled while it sat in the cart: checkout is
// rejected, and the buyer is not stuck with the line.
func TestAdvCartLineOfACancelledConcert(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	concert := org.createConcert("Gone")
	cust.do("PUT", "/api/billing", map[string]string{"name": "Ala", "address": "Długa 1", "email": cust.Email})
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Standing", "quantity": 1})
	cust.do("PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email})
	if st, b := org.do("POST", "/api/concerts/"+concert+"/cancel", map[string]string{"reason": "rain"}); st != 204 {
		t.Fatalf("cancel: %d %s", st, b)
	}
	e.settle()
	st, b := cust.do("POST", "/api/cart/checkout", nil)
	t.Logf("checkout of a cancelled concert's line: %d %s", st, b)
	e.settle()
	time.Sleep(300 * time.Millisecond)
	e.settle()
	_, pays := cust.do("GET", "/api/payments", nil)
	if strings.Contains(string(pays), "captured") {
		t.Errorf("a cancelled concert was charged: %s", pays)
	}
	_, cart := cust.do("GET", "/api/cart", nil)
	if strings.Contains(string(cart), concert) {
		if st, b := cust.do("DELETE", "/api/cart/items/"+concert+"/Standing", nil); st != 204 {
			t.Errorf("the cancelled concert's line is back in the cart and cannot be removed: %d %s", st, b)
		}
	}
}

// cancel-order: one key reused for a second order must not answer 204
// while leaving the second order as it was.
func TestAdvCancelOrderKeyReusedOnAnotherOrder(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	cust := e.newUser("cust", users.Customer)
	c1, c2 := org.createConcert("One"), org.createConcert("Two")
	e.settle()
	e.Gateway.PendUser(cust.ID)
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": c1, "ticketType": "Seat", "quantity": 1})
	cust.do("POST", "/api/cart/items", map[string]any{"concertId": c2, "ticketType": "Seat", "quantity": 1})
	cust.do("PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email})
	st, body := cust.do("POST", "/api/cart/checkout", nil)
	if st != 202 {
		t.Fatalf("checkout %d %s", st, body)
	}
	ids := decodeJSON[map[string]map[string]string](t, body)["orders"]
	status := func(id string) string {
		_, b := cust.do("GET", "/api/orders/"+id, nil)
		s, _ := decodeJSON[map[string]any](t, b)["status"].(string)
		return s
	}
	e.eventually("awaiting payment", func() bool {
		return status(ids[c1]) == "awaiting_payment" && status(ids[c2]) == "awaiting_payment"
	})
	if st, b := cust.do("POST", "/api/orders/"+ids[c1]+"/cancel", map[string]string{"reason": "x"}, "Idempotency-Key", "cancel"); st != 204 {
		t.Fatalf("cancel 1: %d %s", st, b)
	}
	st, b := cust.do("POST", "/api/orders/"+ids[c2]+"/cancel", map[string]string{"reason": "x"}, "Idempotency-Key", "cancel")
	e.settle()
	time.Sleep(300 * time.Millisecond)
	e.settle()
	if s := status(ids[c2]); st == 204 && s != "cancelled" {
		t.Errorf("cancel of order 2 with the key of order 1's cancel: 204 %s, but order 2 is %s", b, s)
	}
}

// The webhook and the explorer's query parameters: garbage in, 4xx out.
func TestAdvWebhookAndExplorerQueriesNever5xx(t *testing.T) {
	e := newEnv(t, withWebhook)
	admin := e.newUser("admin", users.Admin)
	anon := e.anonymous()
	before := e.mark()
	for _, c := range []struct{ ctype, body, sig string }{
		{"application/json", `{}`, ""},
		{"application/json", `{"type":"payment_intent.succeeded"}`, "t=1,v1=deadbeef"},
		{"application/json", strings.Repeat("x", 70<<10), "t=1,v1=00"},
		{"text/plain", `garbage`, "t=99999999999999999999,v1=zz"},
		{"application/json", `{"id":"evt_1"}`, "v1=" + strings.Repeat("a", 64)},
	} {
		st, b := anon.raw("POST", "/api/webhooks/stripe", c.ctype, []byte(c.body), "Stripe-Signature", c.sig)
		if st < 400 || st >= 500 {
			t.Errorf("webhook %.30q sig %q: %d %.200s", c.body, c.sig, st, b)
		}
	}
	if e.mark() != before {
		t.Errorf("unsigned webhooks wrote")
	}
	for _, q := range []string{"category=%27%20OR%201%3D1%20--", "after=%27%3B%20DROP%20TABLE%20es_events%3B--", "category=" + strings.Repeat("c", 4000),
		"after=" + strings.Repeat("%ff", 1000)} {
		for _, p := range []string{"/explorer?", "/api/explorer/streams?"} {
			if st, b := admin.raw("GET", p+q, "", nil); st >= 500 {
				t.Errorf("GET %s%.60s: %d %.200s", p, q, st, b)
			}
		}
	}
	for _, q := range []string{"%27%20OR%201%3D1", "%25", "_", strings.Repeat("q", 5000), "%00"} {
		if st, b := admin.raw("GET", "/explorer/search?q="+q, "", nil); st >= 500 {
			t.Errorf("search %.40s: %d %.200s", q, st, b)
		}
	}
}

// The log-in page's next never leaves the site.
func TestAdvLogInNextStaysOnTheSite(t *testing.T) {
	e := newEnv(t)
	re := regexp.MustCompile(`data-next="([^"]*)"`)
	for _, n := range []string{"//evil.example", "/\\evil.example", "https://evil.example", "javascript:alert(1)", "/%09/evil.example",
		"%2F%2Fevil.example", "/\u3000/evil.example", "\\/evil.example", "/.//evil.example", " //evil.example", "http:evil.example"} {
		for _, page := range []string{"/login", "/register"} {
			r, _ := http.NewRequest("GET", e.Server.URL+page, nil)
			q := r.URL.Query()
			q.Set("next", n)
			r.URL.RawQuery = q.Encode()
			resp, err := e.Server.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := re.FindStringSubmatch(string(b))
			if m == nil {
				continue
			}
			v := strings.ReplaceAll(m[1], "&#43;", "+")
			if strings.HasPrefix(v, "//") || strings.Contains(v, ":") || strings.HasPrefix(v, "/\\") || !strings.HasPrefix(v, "/") {
				t.Errorf("%s?next=%q renders data-next=%q", page, n, v)
			}
		}
	}
}
