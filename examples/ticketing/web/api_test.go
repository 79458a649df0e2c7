package web_test

import (
	"bytes"
	"net/http"
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
