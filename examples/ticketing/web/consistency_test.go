package web_test

import (
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
	"esgo.dev/examples/ticketing/web"
)

// A concert created a moment ago, before the read model has it, is shown
// from its streams: with its ETag and every seat left. Here the read
// models never run, so the read model surely lags.
func TestAConcertIsShownBeforeItsReadModelCatchesUp(t *testing.T) {
	ctx := t.Context()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	quiet := slog.New(slog.DiscardHandler)
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Logger: quiet, PasswordCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The details' tables exist, empty: the read model is behind.
	if err := app.SQLiteReadModels(store).SetupProjection(ctx, concerts.DetailsProjection(a.Registry())); err != nil {
		t.Fatal(err)
	}
	srv, err := web.New(ctx, web.Config{App: a, DB: store, Events: store, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateConcert(ctx, es.NewID(), concerts.CreateConcert{ConcertID: "fresh", Name: "Fresh", Artist: "Someone",
		Venue: "Hall", StartsAt: time.Now().AddDate(0, 1, 0), OrganizerID: es.NewID(),
		TicketTypes: []concerts.TicketType{{Name: "GA", Price: money.Money{Amount: 5000, Currency: "PLN"}}},
		Capacity:    map[string]int{"GA": 40}}); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "https://tickets.example/api/concerts/fresh", nil))
	if w.Code != http.StatusOK || w.Header().Get("ETag") == "" {
		t.Fatalf("GET a fresh concert: %d, ETag %q: %s", w.Code, w.Header().Get("ETag"), w.Body)
	}
	c := decodeJSON[struct {
		Name        string `json:"name"`
		TicketTypes []struct {
			Name      string `json:"name"`
			SeatsLeft int    `json:"seatsLeft"`
		} `json:"ticketTypes"`
	}](t, w.Body.Bytes())
	if c.Name != "Fresh" || len(c.TicketTypes) != 1 || c.TicketTypes[0].SeatsLeft != 40 {
		t.Errorf("fresh concert shown as %s", w.Body)
	}
}
