package web_test

import (
	"net/http"
	"strings"
	"testing"

	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

func TestRegisterLogInAndOut(t *testing.T) {
	e := newEnv(t)
	anon := e.anonymous()
	if st, _ := anon.do("GET", "/api/session", nil); st != http.StatusUnauthorized {
		t.Fatalf("anonymous whoami: %d, want 401", st)
	}
	reg := map[string]string{"email": "Ala@Example.com", "name": "Ala", "password": "correct horse battery"}
	st, body := anon.do("POST", "/api/users", reg, "Idempotency-Key", "ala-1")
	if st != http.StatusCreated {
		t.Fatalf("register: %d %s", st, body)
	}
	id := decodeJSON[map[string]string](t, body)["id"]
	// The same key again is a repeat of the same registration.
	if st, body := anon.do("POST", "/api/users", reg, "Idempotency-Key", "ala-1"); st != http.StatusCreated || decodeJSON[map[string]string](t, body)["id"] != id {
		t.Fatalf("repeated register: %d %s", st, body)
	}
	// Another key is another account, for a taken address.
	if st, _ := anon.do("POST", "/api/users", reg, "Idempotency-Key", "ala-2"); st != http.StatusConflict {
		t.Fatalf("second account for the address: %d, want 409", st)
	}
	if st, _ := anon.do("POST", "/api/session", map[string]string{"email": "ala@example.com", "password": "wrong password"}); st != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", st)
	}
	if st, body := anon.do("POST", "/api/session", map[string]string{"email": "ala@example.com", "password": "correct horse battery"}); st != http.StatusOK {
		t.Fatalf("log in: %d %s", st, body)
	}
	st, body = anon.do("GET", "/api/session", nil)
	if v := decodeJSON[web.Viewer](t, body); st != http.StatusOK || v.ID != id || v.Role != users.Customer {
		t.Fatalf("whoami: %d %s", st, body)
	}
	if st, _ := anon.do("DELETE", "/api/session", nil); st != http.StatusNoContent {
		t.Fatalf("log out: %d", st)
	}
	if st, _ := anon.do("GET", "/api/session", nil); st != http.StatusUnauthorized {
		t.Fatalf("after log-out: %d, want 401", st)
	}
}

func TestSessionsSurviveARestartOfTheServer(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("ola", users.Customer)
	srv, err := web.New(t.Context(), web.Config{App: e.App, DB: e.Store, Events: e.Store})
	if err != nil {
		t.Fatal(err)
	}
	e.Server.Config.Handler = srv // a new server on the same database
	if st, body := u.do("GET", "/api/session", nil); st != http.StatusOK {
		t.Fatalf("whoami after restart: %d %s", st, body)
	}
}

func TestFailedLogInsAreRateLimited(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.LoginFailures = 3 })
	u := e.newUser("ela", users.Customer)
	anon := e.anonymous()
	for i := range 3 {
		if st, _ := anon.do("POST", "/api/session", map[string]string{"email": u.Email, "password": "nope nope nope"}); st != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i, st)
		}
	}
	// Now even the right password is refused for this address.
	st, body := anon.do("POST", "/api/session", map[string]string{"email": strings.ToUpper(u.Email), "password": "correct horse battery"})
	if st != http.StatusTooManyRequests {
		t.Fatalf("after 3 failures: %d %s, want 429", st, body)
	}
}

func TestCrossOriginStateChangesAreRefused(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("ula", users.Customer)
	st, _ := u.do("DELETE", "/api/session", nil, "Sec-Fetch-Site", "cross-site")
	if st != http.StatusForbidden {
		t.Fatalf("cross-site log-out: %d, want 403", st)
	}
	if st, _ := u.do("GET", "/api/session", nil); st != http.StatusOK {
		t.Fatalf("the session was ended by a refused request: %d", st)
	}
}
