package web

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/users"
)

// fuzzTarget is a command route with the session that may call it.
type fuzzTarget struct {
	method, path, token string
}

// FuzzCommandJSON throws arbitrary bodies at the routes that decode a
// command, as a viewer allowed to call each: the answer is never a 5xx,
// and a refusal (4xx) writes nothing to the event store or the outbox.
// Only the read models run in the background: no process writes
// meanwhile.
func FuzzCommandJSON(f *testing.F) {
	ctx := context.Background()
	// The read models run (they write only their own tables); the
	// processes do not, so no message is delivered meanwhile.
	a, store, _ := NewTestApp(f, (*app.App).RunReadModels)
	quiet := slog.New(slog.DiscardHandler)
	s, err := New(ctx, Config{App: a, DB: store, Events: store, Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	session := func(role users.Role) (string, string) {
		id := es.NewID()
		if err := a.RegisterUser(ctx, id, string(role)+"-"+id[:8]+"@example.com", string(role), "correct horse battery", role); err != nil {
			f.Fatal(err)
		}
		token, _, err := s.sessions.create(ctx, id)
		if err != nil {
			f.Fatal(err)
		}
		return id, token
	}
	_, cust := session(users.Customer)
	orgID, org := session(users.Organizer)
	userID, admin := session(users.Admin)
	concert := es.NewID()
	pln := money.Money{Amount: 10000, Currency: "PLN"}
	if err := a.CreateConcert(ctx, es.NewID(), concerts.CreateConcert{ConcertID: concert, Name: "Summer Night", Artist: "A", Venue: "V",
		StartsAt: time.Now().AddDate(0, 1, 0), TicketTypes: []concerts.TicketType{{Name: "Standing", Price: pln}},
		Capacity: map[string]int{"Standing": 100}, OrganizerID: orgID}); err != nil {
		f.Fatal(err)
	}
	if err := a.AddToCart(ctx, es.NewID(), mustViewer(f, s, cust), concert, "Standing", 1); err != nil {
		f.Fatal(err)
	}
	// The read models' tables exist once they have caught up with the
	// fixtures' events.
	if err := a.WaitForReadModels(ctx); err != nil {
		f.Fatal(err)
	}
	targets := []fuzzTarget{
		{"POST", "/api/users", ""},
		{"POST", "/api/session", ""},
		{"POST", "/api/concerts", org},
		{"PUT", "/api/concerts/" + concert + "/ticket-types", org},
		{"POST", "/api/concerts/" + concert + "/cancel", org},
		{"POST", "/api/concerts/" + concert + "/scans", org},
		{"POST", "/api/cart/items", cust},
		{"PUT", "/api/cart/items/" + concert + "/Standing", cust},
		{"PUT", "/api/cart/delivery", cust},
		{"PUT", "/api/billing", cust},
		{"PUT", "/api/users/" + userID + "/role", admin},
	}
	seeds := []string{
		`{"email":"a@example.com","name":"A","password":"correct horse battery"}`,
		`{"email":"a@example.com","password":"correct horse battery"}`,
		`{"name":"N","artist":"A","venue":"V","startsAt":"2100-01-01T20:00:00Z","ticketTypes":[{"name":"S","price":{"amount":100,"currency":"PLN"}}],"capacity":{"S":10}}`,
		`{"ticketTypes":[{"name":"Standing","price":{"amount":200,"currency":"PLN"}}],"capacity":{"Standing":5}}`,
		`{"reason":"storm"}`,
		`{"code":"x.y","gate":"A"}`,
		`{"concertId":"` + concert + `","ticketType":"Standing","quantity":1}`,
		`{"quantity":2}`,
		`{"method":"courier","address":{"name":"A","street":"S","city":"C","postalCode":"00-001","country":"PL"}}`,
		`{"name":"A","address":"S","email":"a@example.com","taxId":"PL1"}`,
		`{"role":"organizer"}`,
	}
	for i, b := range seeds {
		f.Add(uint8(i), []byte(b))
	}
	f.Add(uint8(6), []byte(`{"concertId":"`+concert+`","ticketType":"Standing","quantity":1}{}`))
	f.Add(uint8(2), []byte(`{"name":"N","extra":1}`))
	f.Add(uint8(8), []byte(`{"method":"email","email":"\u0000@example.com"}`))
	f.Fuzz(func(t *testing.T, sel uint8, body []byte) {
		tg := targets[int(sel)%len(targets)]
		req := httptest.NewRequest(tg.method, tg.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tg.token != "" {
			req.AddCookie(&http.Cookie{Name: cookieName, Value: tg.token})
		}
		head, backlog := fuzzMark(t, store)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", tg.method, tg.path, body, w.Code, w.Body)
		}
		if w.Code >= 400 {
			if h, b := fuzzMark(t, store); h != head || b != backlog {
				t.Fatalf("%s %s %q: refused with %d %s, but wrote: head %d→%d, backlog %d→%d", tg.method, tg.path, body, w.Code, w.Body,
					head, h, backlog, b)
			}
		}
	})
}

func mustViewer(f *testing.F, s *Server, token string) string {
	v, err := s.viewerFor(context.Background(), token)
	if err != nil || !v.LoggedIn() {
		f.Fatalf("session: %v", err)
	}
	return v.ID
}

func fuzzMark(t *testing.T, store *sqlite.Store) (int64, int64) {
	h, err := store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.Backlog(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h, b
}
