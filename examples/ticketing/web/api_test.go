package web_test

import (
	"bytes"
	"net/http"
	"slices"
	"testing"

	"esgo.dev/examples/ticketing/users"
)

func TestACustomerBuysTicketsThroughTheAPI(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("olga", users.Organizer)
	cust := e.newUser("ala", users.Customer)
	concertID := org.createConcert("Summer Night")
	e.settle()
	st, body := e.anonymous().do("GET", "/api/concerts", nil)
	list := decodeJSON[[]map[string]any](t, body)
	if st != http.StatusOK || len(list) != 1 || list[0]["id"] != concertID || list[0]["seatsLeft"] != float64(70) {
		t.Fatalf("concerts: %d %s", st, body)
	}
	orderID := cust.purchase(concertID, "Seat", 2)
	ids := cust.ticketIDs(orderID)
	if len(ids) != 2 {
		t.Fatalf("tickets of the order: %v", ids)
	}
	st, body = cust.do("GET", "/api/tickets/"+ids[0]+"/qr.png", nil)
	if st != http.StatusOK || !bytes.HasPrefix(body, []byte("\x89PNG")) {
		t.Fatalf("qr: %d %.20q", st, body)
	}
	for _, path := range []string{"/api/tickets", "/api/payments", "/api/invoices", "/api/orders"} {
		st, body := cust.do("GET", path, nil)
		if st != http.StatusOK || len(decodeJSON[[]map[string]any](t, body)) != 1+map[bool]int{true: 1}[path == "/api/tickets"] {
			t.Errorf("%s: %d %s", path, st, body)
		}
	}
	if st, body := cust.do("GET", "/api/invoices/"+orderID, nil); st != http.StatusOK {
		t.Errorf("invoice: %d %s", st, body)
	}
	st, body = org.do("GET", "/api/concerts/"+concertID+"/sales", nil)
	sales := decodeJSON[struct {
		Confirmed map[string]int `json:"confirmed"`
		Revenue   []struct {
			Net struct{ Amount int64 } `json:"net"`
		} `json:"revenue"`
	}](t, body)
	if st != http.StatusOK || sales.Confirmed["Seat"] != 2 || len(sales.Revenue) != 1 || sales.Revenue[0].Net.Amount != 50000 {
		t.Fatalf("sales: %d %s", st, body)
	}
	code := cust.ticketCode(ids[0])
	st, body = org.do("POST", "/api/concerts/"+concertID+"/scans", map[string]string{"code": code, "gate": "A"})
	if st != http.StatusOK {
		t.Fatalf("scan: %d %s", st, body)
	}
	if st, body := org.do("POST", "/api/concerts/"+concertID+"/scans", map[string]string{"code": code, "gate": "B"}); st != http.StatusConflict {
		t.Fatalf("second scan: %d %s, want 409", st, body)
	}
}

func TestACustomerCancelsAnUnpaidOrderAndGetsTheSeatBack(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("olga", users.Organizer)
	cust := e.newUser("ala", users.Customer)
	concert := org.createConcert("Summer Night")
	e.settle()
	e.Gateway.PendUser(cust.ID) // the bank does not answer: the order waits for its payment
	for _, s := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/cart/items", map[string]any{"concertId": concert, "ticketType": "Seat", "quantity": 1}},
		{"PUT", "/api/cart/delivery", map[string]string{"method": "email", "email": cust.Email}},
	} {
		if st, body := cust.do(s.method, s.path, s.body); st != http.StatusNoContent {
			t.Fatalf("%s %s: %d %s", s.method, s.path, st, body)
		}
	}
	st, body := cust.do("POST", "/api/cart/checkout", nil)
	if st != http.StatusAccepted {
		t.Fatalf("checkout: %d %s", st, body)
	}
	order := decodeJSON[map[string]map[string]string](t, body)["orders"][concert]
	status := func() string {
		st, body := cust.do("GET", "/api/orders/"+order, nil)
		if st != http.StatusOK {
			return ""
		}
		return decodeJSON[map[string]any](t, body)["status"].(string)
	}
	e.eventually("the order awaits its payment", func() bool { return status() == "awaiting_payment" })
	if st, body := cust.do("POST", "/api/orders/"+order+"/cancel", map[string]string{"reason": "changed my mind"}); st != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", st, body)
	}
	e.eventually("the order is cancelled", func() bool { return status() == "cancelled" })
	e.settle()
	st, body = e.anonymous().do("GET", "/api/concerts/"+concert, nil)
	if c := decodeJSON[struct {
		TicketTypes []struct {
			Name      string `json:"name"`
			SeatsLeft int    `json:"seatsLeft"`
		} `json:"ticketTypes"`
	}](t, body); st != http.StatusOK || c.TicketTypes[0].Name != "Seat" || c.TicketTypes[0].SeatsLeft != 20 {
		t.Fatalf("seats after the cancellation: %d %s, want the seat back", st, body)
	}
}

func TestAnAdminGivesACustomerTheOrganizerRole(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	ola := e.newUser("ola", users.Customer)
	if st, _ := ola.do("POST", "/api/concerts", concertBody("Summer Night")); st != http.StatusForbidden {
		t.Fatalf("a customer creates a concert: %d, want 403", st)
	}
	e.settle()
	st, body := admin.do("GET", "/api/users", nil)
	var found bool
	for _, a := range decodeJSON[[]map[string]string](t, body) {
		found = found || a["id"] == ola.ID && a["email"] == ola.Email && a["role"] == "customer"
	}
	if st != http.StatusOK || !found {
		t.Fatalf("users: %d %s, want ola, a customer", st, body)
	}
	if st, body := admin.do("PUT", "/api/users/"+ola.ID+"/role", map[string]string{"role": "organizer"}); st != http.StatusNoContent {
		t.Fatalf("change role: %d %s", st, body)
	}
	// The session stays; the role is read at each request.
	if st, body := ola.do("POST", "/api/concerts", concertBody("Summer Night")); st != http.StatusCreated {
		t.Fatalf("the new organizer creates a concert: %d %s", st, body)
	}
}

func TestTheStripeWebhookExistsOnlyWithASecret(t *testing.T) {
	e := newEnv(t)
	if st, _ := e.anonymous().do("POST", "/api/webhooks/stripe", map[string]string{}); st != http.StatusNotFound {
		t.Fatalf("without a secret: %d, want 404", st)
	}
	if slices.Contains(e.Web.RoutePatterns(), "POST /api/webhooks/stripe") {
		t.Fatal("the route is listed without a secret")
	}
}
