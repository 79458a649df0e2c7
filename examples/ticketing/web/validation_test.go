package web_test

// Validation at the door: the findings of the adversarial tests (see
// adversarial_test.go) about what the modules accept, fixed in the module
// where each rule belongs and checked here through HTTP.

import (
	"net/http"
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

// advBody is the body of a POST /api/concerts a month ahead, with ticket
// types priced in currency and their capacities.
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

// ISO 4217: a made-up code, or one that names no money a ticket is paid
// in, is not a currency (400); a real one is.
func TestUnknownCurrencyIsRefused(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	for _, c := range []string{"ZZZ", "XTS"} {
		if st, b := org.do("POST", "/api/concerts", advBody("Zorkmids", map[string]int64{"A": 100}, map[string]int{"A": 5}, c)); st != http.StatusBadRequest {
			t.Errorf("a concert priced in %s: %d %s, want 400", c, st, b)
		}
	}
	advConcert(t, org, advBody("Euro", map[string]int64{"A": 100}, map[string]int{"A": 5}, "EUR"))
}
