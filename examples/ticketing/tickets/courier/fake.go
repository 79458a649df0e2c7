package courier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// FakeConfig configures a [Fake].
type FakeConfig struct {
	// DeliverAfter is how many tracking requests a parcel is in transit
	// for before it is delivered (default 2). Negative: never, until
	// Deliver is called.
	DeliverAfter int
}

// Fake is a local courier service speaking the API described in the
// package doc. It is an http.Handler: serve it with httptest.NewServer in
// tests, [Fake.Start] in a program, or call it in-process with
// [Fake.Client]. It is safe for concurrent use.
type Fake struct {
	cfg FakeConfig
	mux *http.ServeMux

	mu        sync.Mutex
	byKey     map[string]string // idempotency key -> tracking number
	shipments map[string]*FakeShipment
	order     []string // tracking numbers, in creation order
	failNext  int
	loseNext  int
	requests  int // shipment requests received, failed ones too
}

// FakeShipment is a parcel the fake courier took.
type FakeShipment struct {
	TrackingNumber string
	Key            string
	Reference      string
	Recipient      string
	Contents       string
	Status         string
	UpdatedAt      time.Time
	polls          int
	lose           bool
}

// NewFake returns a fake courier.
func NewFake(cfg FakeConfig) *Fake {
	if cfg.DeliverAfter == 0 {
		cfg.DeliverAfter = 2
	}
	f := &Fake{cfg: cfg, mux: http.NewServeMux(), byKey: map[string]string{}, shipments: map[string]*FakeShipment{}}
	f.mux.HandleFunc("POST /v1/shipments", f.createShipment)
	f.mux.HandleFunc("GET /v1/shipments/{tracking}", f.getShipment)
	f.mux.HandleFunc("POST /control/fail-next", f.control(func(n int) { f.failNext = n }))
	f.mux.HandleFunc("POST /control/lose-next", f.control(func(n int) { f.loseNext = n }))
	f.mux.HandleFunc("POST /control/shipments/{tracking}/{action}", f.controlShipment)
	return f
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// FailNext makes the next n shipment requests fail with 503.
func (f *Fake) FailNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failNext = n
}

// LoseNext makes the next n parcels get lost: their first tracking
// request reports them lost.
func (f *Fake) LoseNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loseNext = n
}

// Lose marks a parcel lost. It reports whether the parcel exists.
func (f *Fake) Lose(tracking string) bool { return f.setStatus(tracking, "lost") }

// Deliver marks a parcel delivered. It reports whether the parcel exists.
func (f *Fake) Deliver(tracking string) bool { return f.setStatus(tracking, "delivered") }

func (f *Fake) setStatus(tracking, status string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shipments[tracking]
	if s == nil {
		return false
	}
	s.Status, s.UpdatedAt = status, time.Now().UTC()
	return true
}

// Shipments returns the parcels taken, oldest first.
func (f *Fake) Shipments() []FakeShipment {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FakeShipment, 0, len(f.order))
	for _, t := range f.order {
		out = append(out, *f.shipments[t])
	}
	return out
}

// Requests returns how many shipment requests the fake received, failed
// and repeated ones included.
func (f *Fake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *Fake) createShipment(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	var req shipmentRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, "malformed shipment: "+err.Error())
		return
	}
	a := req.Recipient
	if key == "" || a.Name == "" || a.Street == "" || a.City == "" || a.PostalCode == "" || len(a.Country) != 2 {
		httpError(w, http.StatusUnprocessableEntity, "a shipment needs an Idempotency-Key and a full recipient address")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.failNext > 0 {
		f.failNext--
		httpError(w, http.StatusServiceUnavailable, "courier unavailable, try again later")
		return
	}
	if t, ok := f.byKey[key]; ok {
		writeJSON(w, http.StatusOK, f.shipments[t].response())
		return
	}
	s := &FakeShipment{TrackingNumber: fmt.Sprintf("FC%06d", len(f.order)+1), Key: key, Reference: req.Reference,
		Recipient: fmt.Sprintf("%s, %s, %s %s, %s", a.Name, a.Street, a.PostalCode, a.City, a.Country),
		Contents:  req.Contents, Status: "in_transit", UpdatedAt: time.Now().UTC()}
	if f.loseNext > 0 {
		f.loseNext--
		s.lose = true
	}
	f.byKey[key] = s.TrackingNumber
	f.shipments[s.TrackingNumber] = s
	f.order = append(f.order, s.TrackingNumber)
	writeJSON(w, http.StatusCreated, s.response())
}

func (f *Fake) getShipment(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.shipments[r.PathValue("tracking")]
	if s == nil {
		httpError(w, http.StatusNotFound, "no such shipment")
		return
	}
	if s.Status == "in_transit" {
		s.polls++
		switch {
		case s.lose:
			s.Status, s.UpdatedAt = "lost", time.Now().UTC()
		case f.cfg.DeliverAfter > 0 && s.polls >= f.cfg.DeliverAfter:
			s.Status, s.UpdatedAt = "delivered", time.Now().UTC()
		}
	}
	writeJSON(w, http.StatusOK, s.response())
}

func (f *Fake) control(set func(n int)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Count int `json:"count"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<10)).Decode(&req); err != nil || req.Count < 0 {
			httpError(w, http.StatusBadRequest, `want {"count": N}, N >= 0`)
			return
		}
		f.mu.Lock()
		set(req.Count)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *Fake) controlShipment(w http.ResponseWriter, r *http.Request) {
	var ok bool
	switch r.PathValue("action") {
	case "lose":
		ok = f.Lose(r.PathValue("tracking"))
	case "deliver":
		ok = f.Deliver(r.PathValue("tracking"))
	default:
		httpError(w, http.StatusNotFound, "actions: lose, deliver")
		return
	}
	if !ok {
		httpError(w, http.StatusNotFound, "no such shipment")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *FakeShipment) response() shipmentResponse {
	return shipmentResponse{TrackingNumber: s.TrackingNumber, Status: s.Status, UpdatedAt: s.UpdatedAt}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// An error here is the client gone: it sees a short body.
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// Client returns a client that calls the fake in-process, through its
// handler, without a socket: the example's default courier when none is
// configured.
func (f *Fake) Client() *Client {
	return NewClient("http://fake-courier.invalid", &http.Client{Transport: handlerTransport{f}})
}

// handlerTransport is an http.RoundTripper that serves requests with a
// handler in-process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	t.h.ServeHTTP(rec, r)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())), ContentLength: int64(rec.body.Len()),
		Request: r,
	}, nil
}

type recorder struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

// FakeServer is a Fake served over HTTP on a local address.
type FakeServer struct {
	*Fake
	srv  *http.Server
	addr string
	done chan struct{}
	// serveErr is what Serve returned; read after done is closed.
	serveErr error
}

// StartFake serves a new Fake on addr ("127.0.0.1:0" picks a free port)
// until Close.
func StartFake(addr string, cfg FakeConfig) (*FakeServer, error) {
	if host, _, err := net.SplitHostPort(addr); err != nil || !isLoopback(host) {
		return nil, fmt.Errorf("courier: the fake serves on loopback addresses only, not %q", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("courier: %w", err)
	}
	s := &FakeServer{Fake: NewFake(cfg), addr: l.Addr().String(), done: make(chan struct{})}
	s.srv = &http.Server{Handler: s.Fake, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		s.serveErr = s.srv.Serve(l)
	}()
	return s, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// URL returns the server's base URL, for NewClient.
func (s *FakeServer) URL() string { return "http://" + s.addr }

// Close stops the server.
func (s *FakeServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	if !errors.Is(s.serveErr, http.ErrServerClosed) {
		err = errors.Join(err, s.serveErr)
	}
	return err
}
