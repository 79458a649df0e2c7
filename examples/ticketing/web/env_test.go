package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

// env is a running application behind an httptest TLS server (the session
// cookie is Secure), on a SQLite file of its own.
type env struct {
	t       *testing.T
	App     *app.App
	Store   *sqlite.Store
	Server  *httptest.Server
	Gateway *finance.FakeGateway
	Web     *web.Server
}

func newEnv(t *testing.T, with ...func(*web.Config)) *env {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler) // a failing test says what failed; the logs would bury it
	ctx := context.Background()
	a, store, gw := web.NewTestApp(t, (*app.App).Run)
	cfg := web.Config{App: a, DB: store, Events: store, Logger: quiet}
	for _, f := range with {
		f(&cfg)
	}
	srv, err := web.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv)
	t.Cleanup(ts.Close)
	return &env{t: t, App: a, Store: store, Server: ts, Gateway: gw, Web: srv}
}

// user is a client with its own cookie jar.
type user struct {
	env    *env
	c      *http.Client
	ID     string
	Email  string
	header http.Header // sent with every request
}

// anonymous returns a client that is not logged in.
func (e *env) anonymous() *user {
	jar, _ := cookiejar.New(nil)
	// A copy: the server's client is one value, and each user needs a
	// jar of its own.
	c := *e.Server.Client()
	c.Jar = jar
	return &user{env: e, c: &c, header: http.Header{}}
}

// newUser registers a user with role (made by the app directly, as an
// admin would) and logs it in.
func (e *env) newUser(name string, role users.Role) *user {
	e.t.Helper()
	u := e.anonymous()
	u.ID = es.NewID()
	u.Email = name + "-" + u.ID[:8] + "@example.com"
	if err := e.App.RegisterUser(context.Background(), u.ID, u.Email, name, "correct horse battery", role); err != nil {
		e.t.Fatal(err)
	}
	if st, body := u.do("POST", "/api/session", map[string]string{"email": u.Email, "password": "correct horse battery"}); st != http.StatusOK {
		e.t.Fatalf("log in %s: %d %s", name, st, body)
	}
	return u
}

// do sends a JSON request (body nil for none) and returns the status and
// the response body.
func (u *user) do(method, path string, body any, header ...string) (int, []byte) {
	u.env.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			u.env.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u.env.Server.URL+path, rd)
	if err != nil {
		u.env.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range u.header {
		req.Header[k] = v
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

// decodeJSON decodes b into a T or fails the test.
func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
