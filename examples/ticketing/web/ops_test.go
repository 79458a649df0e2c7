package web_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/users"
	"esgo.dev/examples/ticketing/web"
)

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t)
	anon := e.anonymous()
	for _, path := range []string{"/healthz", "/readyz"} {
		if st, body := anon.do("GET", path, nil); st != http.StatusOK {
			t.Errorf("%s: %d %s", path, st, body)
		}
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A request's correlation ID is returned to the client, carried by the
// events it caused, and logged with the request; the password it carried
// is not logged.
func TestARequestsCorrelationIDReachesItsEventsAndLogs(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(web.LogHandler(slog.NewJSONHandler(&logs, nil)))
	e := newEnv(t, func(c *web.Config) { c.Logger = logger })
	anon := e.anonymous()
	const password = "a very secret password"
	cid := es.NewID()
	st, body := anon.do("POST", "/api/users", map[string]string{"email": "cid@example.com", "name": "Cid", "password": password},
		"X-Correlation-ID", cid)
	if st != http.StatusCreated {
		t.Fatalf("register: %d %s", st, body)
	}
	id := decodeJSON[map[string]string](t, body)["id"]
	evs, err := es.Collect(e.Store.ReadStream(context.Background(), users.Stream(id), es.StreamQuery{}))
	if err != nil || len(evs) == 0 {
		t.Fatalf("user stream: %v, %d events", err, len(evs))
	}
	if got := evs[0].Metadata.CorrelationID; got != cid {
		t.Errorf("event correlation ID %q, want %s", got, cid)
	}
	out := logs.String()
	if !strings.Contains(out, `"correlation_id":"`+cid+`"`) || !strings.Contains(out, `"route":"POST /api/users"`) {
		t.Errorf("the request's log line lacks its correlation ID or route:\n%s", out)
	}
	if strings.Contains(out, password) {
		t.Errorf("a password was logged:\n%s", out)
	}
	// A client's ID that is not a UUID is replaced.
	for _, bad := range []string{strings.Repeat("x", 500), "purchase-42"} {
		req, _ := http.NewRequest("GET", e.Server.URL+"/healthz", nil)
		req.Header.Set("X-Correlation-ID", bad)
		resp, err := anon.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("X-Correlation-ID"); !es.ValidID(got) {
			t.Errorf("the correlation ID %.20q came back as %q, want a new UUID", bad, got)
		}
	}
}

func TestMetricsCountRequestsByRoute(t *testing.T) {
	e := newEnv(t)
	u := e.newUser("mia", users.Customer)
	u.do("GET", "/api/session", nil)
	st, body := e.anonymous().do("GET", "/metrics", nil)
	if st != http.StatusOK {
		t.Fatalf("/metrics: %d", st)
	}
	for _, want := range []string{
		`http_requests_total{code="200",method="GET",route="GET /api/session"} 1`,
		`http_requests_total{code="200",method="POST",route="POST /api/session"} 1`,
		`go_goroutines`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
