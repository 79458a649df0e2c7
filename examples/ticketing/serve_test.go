package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"esgo.dev/es/postgres/pgtest"
)

// lockedBuffer collects serve's output safely.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is serve running in the test.
type running struct {
	url    string
	out    *lockedBuffer
	cancel context.CancelFunc
	done   chan error
}

func startServe(t *testing.T, o serveOptions) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &lockedBuffer{}, cancel: cancel, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() { r.done <- serve(ctx, o, r.out, func(url string) { ready <- url }) }()
	select {
	case r.url = <-ready:
	case err := <-r.done:
		t.Fatalf("serve: %v\n%s", err, r.out)
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not start:\n%s", r.out)
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends serve and checks that it shut down cleanly.
func (r *running) stop(t *testing.T) {
	t.Helper()
	if r.done == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("serve: %v\n%s", err, r.out)
	}
	r.done = nil
}

// client is a browser-like client: the session cookie is Secure, which
// Go's cookie jar (like browsers) sends to http://127.0.0.1.
func client(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second}
}

func post(t *testing.T, c *http.Client, url, body string) (int, string) {
	t.Helper()
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func testOptions(t *testing.T) serveOptions {
	dir := t.TempDir()
	return serveOptions{addr: "127.0.0.1:0", db: filepath.Join(dir, "ticketing.db"), mail: filepath.Join(dir, "mail"),
		demo: true, hold: time.Minute, logLevel: 8, passwordCost: 4} // logLevel 8: errors only
}

// serve starts with demo data, keeps sessions across a restart on the
// same file, and adds no demo data twice.
func TestServeRestartsOnTheSameFile(t *testing.T) {
	o := testOptions(t)
	first := startServe(t, o)
	c := client(t)
	if st, body := post(t, c, first.url+"/api/session", `{"email":"ala@ticketing.example","password":"`+demoPassword+`"}`); st != http.StatusOK {
		t.Fatalf("log in as the demo customer: %d %s", st, body)
	}
	first.stop(t)
	if !strings.Contains(first.out.String(), "demo data added") {
		t.Errorf("first start did not add demo data:\n%s", first.out)
	}

	second := startServe(t, o)
	if strings.Contains(second.out.String(), "demo data added") {
		t.Errorf("second start added demo data again:\n%s", second.out)
	}
	// The cookie jar is per host and port; the new port gets the old
	// cookie copied over, as a browser would keep it for one address.
	copyCookies(t, c, first.url, second.url)
	if st, body := get(t, c, second.url+"/api/session"); st != http.StatusOK || !strings.Contains(body, "ala@ticketing.example") {
		t.Fatalf("the session did not survive the restart: %d %s", st, body)
	}
	if st, _ := get(t, c, second.url+"/readyz"); st != http.StatusOK {
		t.Fatalf("readyz: %d", st)
	}
}

func copyCookies(t *testing.T, c *http.Client, from, to string) {
	t.Helper()
	fu, _ := http.NewRequest("GET", from, nil)
	tu, _ := http.NewRequest("GET", to, nil)
	c.Jar.SetCookies(tu.URL, c.Jar.Cookies(fu.URL))
}

// A request in flight when the shutdown begins is finished and answered.
// The request asks for "100 Continue", which the server sends only once
// the handler reads the body: the shutdown then surely begins with the
// handler running.
func TestServeFinishesRequestsInFlightOnShutdown(t *testing.T) {
	r := startServe(t, testOptions(t))
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email":"late@example.com","name":"Late","password":"correct horse battery"}`
	fmt.Fprintf(conn, "POST /api/users HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		strings.TrimPrefix(r.url, "http://"), len(body))
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "100 Continue") {
		t.Fatalf("want 100 Continue, got %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the empty line after it
		t.Fatal(err)
	}
	r.cancel()
	for !strings.Contains(r.out.String(), "shutting down") {
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("the request in flight got %d, want 201", resp.StatusCode)
	}
	r.stop(t)
}

// With -postgres, events, read models and sessions are on PostgreSQL.
func TestServeOnPostgres(t *testing.T) {
	o := testOptions(t)
	o.postgres = pgtest.DSN()
	o.schema = pgtest.Schema(t, pgtest.Pool(t)) // dropped when the test ends
	r := startServe(t, o)
	c := client(t)
	if st, body := post(t, c, r.url+"/api/session", `{"email":"olga@ticketing.example","password":"`+demoPassword+`"}`); st != http.StatusOK {
		t.Fatalf("log in: %d %s", st, body)
	}
	if st, _ := get(t, c, r.url+"/readyz"); st != http.StatusOK {
		t.Fatalf("readyz: %d", st)
	}
	if _, err := os.Stat(o.db); err == nil {
		t.Errorf("a SQLite file was made with -postgres")
	}
}
