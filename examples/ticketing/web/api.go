package web

import (
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/users"
)

// Who may do what. Every route below checks its viewer first: anonymous
// callers get 401, callers of another role 403. Customers buy (cart,
// checkout, orders, tickets, payments, invoices, billing); organizers
// manage their own concerts (another organizer's concert is refused with
// 403: concerts are public, so the refusal tells nothing a GET would not);
// admins manage users. What belongs to a customer (an order, a ticket, a
// payment, an invoice) is 404 to every other customer, so that nobody
// learns that it exists.

// route is one route of the server: a net/http pattern and its handler.
// The server registers the routes its list functions return (authRouteList,
// apiRouteList), and the tests walk the same lists, so a route added
// without a test row fails them.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// apiRoutes registers the JSON API of the modules' commands and read
// models.
func (s *Server) apiRoutes(mux *http.ServeMux) {
	for _, rt := range s.apiRouteList() {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
}

// apiRouteList is the JSON API, one short handler per route (see the
// api_*.go files).
func (s *Server) apiRouteList() []route {
	rs := []route{
		{"GET /api/users", s.api(s.listUsers)},
		{"PUT /api/users/{id}/role", s.api(s.changeRole)},

		{"GET /api/concerts", s.api(s.listConcerts)},
		{"GET /api/concerts/{id}", s.api(s.getConcert)},
		{"POST /api/concerts", s.api(s.createConcert)},
		{"PUT /api/concerts/{id}/ticket-types", s.api(s.updateTicketTypes)},
		{"POST /api/concerts/{id}/cancel", s.api(s.cancelConcert)},
		{"GET /api/concerts/{id}/sales", s.api(s.concertSales)},
		{"POST /api/concerts/{id}/scans", s.api(s.scanTicket)},

		{"GET /api/cart", s.api(s.getCart)},
		{"POST /api/cart/items", s.api(s.addToCart)},
		{"PUT /api/cart/items/{concertId}/{ticketType}", s.api(s.changeQuantity)},
		{"DELETE /api/cart/items/{concertId}/{ticketType}", s.api(s.removeFromCart)},
		{"PUT /api/cart/delivery", s.api(s.chooseDelivery)},
		{"POST /api/cart/checkout", s.api(s.checkout)},

		{"GET /api/orders", s.api(s.listOrders)},
		{"GET /api/orders/{id}", s.api(s.getOrder)},
		{"POST /api/orders/{id}/cancel", s.api(s.cancelOrder)},

		{"GET /api/tickets", s.api(s.listTickets)},
		{"GET /api/tickets/{id}", s.api(s.getTicket)},
		{"GET /api/tickets/{id}/qr.png", s.api(s.ticketQR)},
		{"POST /api/tickets/{id}/resend", s.api(s.resendTicket)},

		{"GET /api/payments", s.api(s.listPayments)},
		{"GET /api/payments/{id}", s.api(s.getPayment)},
		{"GET /api/invoices", s.api(s.listInvoices)},
		{"GET /api/invoices/{orderId}", s.api(s.getInvoice)},
		{"PUT /api/billing", s.api(s.setBilling)},
		{"GET /api/organizer/revenue", s.api(s.organizerRevenue)},
	}
	if s.webhook != nil {
		// Stripe signs its posts; there is no session to check.
		rs = append(rs, route{"POST /api/webhooks/stripe", s.webhook.ServeHTTP})
	}
	return rs
}

// api adapts a handler that returns its failure: fail writes it.
func (s *Server) api(h func(w http.ResponseWriter, r *http.Request, v Viewer) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r, viewerOf(r.Context())); err != nil {
			s.fail(w, r, err)
		}
	}
}

// Refusals of the API's preconditions.
var (
	errPreconditionRequired = errors.New("web: send If-Match with the ETag you read")
	errPreconditionFailed   = errors.New("web: it changed since you read it (If-Match does not match); read it again")
)

// uuidParam returns the path parameter name, which must be a UUID (the
// IDs of users, orders, tickets and payments).
func uuidParam(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if !es.ValidID(id) {
		return "", fmt.Errorf("%w: %s %q is not a UUID", errBadRequest, name, id)
	}
	return id, nil
}

// maxConcertID bounds a concert ID.
const maxConcertID = 100

// concertParam returns a concert ID from the path. Concerts made through
// the API have UUIDs; the demo names its concert ("warsaw-1a2b3c4d"), so
// an ID is a UUID or 1 to 100 lower-case letters, digits and dashes.
func concertParam(r *http.Request, name string) (string, error) {
	id := r.PathValue(name)
	if !validConcertID(id) {
		return "", fmt.Errorf("%w: %s %q is not a concert ID", errBadRequest, name, id)
	}
	return id, nil
}

func validConcertID(id string) bool {
	if es.ValidID(id) {
		return true
	}
	return id != "" && len(id) <= maxConcertID && id[0] != '-' &&
		strings.Trim(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == ""
}

// textParam returns a free-text path parameter (a ticket type's name):
// 1 to 100 bytes of UTF-8.
func textParam(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if v == "" || len(v) > 100 || !utf8.ValidString(v) {
		return "", fmt.Errorf("%w: %s %q", errBadRequest, name, v)
	}
	return v, nil
}

// etag is the ETag of a stream at version: the version, quoted.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// anyVersion is ifMatch's version for "If-Match: *", which matches any
// version of a resource that exists (RFC 9110 13.1.1).
const anyVersion = -1

// ifMatch returns the version named by If-Match (anyVersion for "*"), and
// whether there is one. Only this API's own strong ETags are understood: a
// weak ETag never matches in If-Match, which compares strongly (RFC 9110
// 13.1.1), so it is refused with 412 like any ETag that does not match.
func ifMatch(r *http.Request) (int64, bool, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return 0, false, nil
	}
	if h == "*" {
		return anyVersion, true, nil
	}
	q, err := strconv.Unquote(h)
	if err != nil || !strings.HasPrefix(h, `"`) {
		return 0, false, fmt.Errorf("%w: If-Match %q is not a strong ETag of this API", errPreconditionFailed, h)
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("%w: If-Match %q is not an ETag of this API", errPreconditionFailed, h)
	}
	return v, true, nil
}

// precondition turns the conflict of a command decided on a client's
// version into 412.
func precondition(err error) error {
	if errors.Is(err, es.ErrConcurrency) {
		return fmt.Errorf("%w: %w", errPreconditionFailed, err)
	}
	return err
}

// noRows turns a read model's "no row" into 404.
func noRows(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %s", errNotFound, what)
	}
	return err
}

// created answers 201 with the new resource's ID.
func created(w http.ResponseWriter, id string) error {
	writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	return nil
}

// noContent answers 204.
func noContent(w http.ResponseWriter) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ok answers 200 with v.
func ok(w http.ResponseWriter, v any) error {
	writeJSON(w, http.StatusOK, v)
	return nil
}

// customer refuses a viewer who is not a logged-in customer.
func customer(v Viewer) error { return require(v, users.Customer) }

// errBadRequestf is a 400 with a message.
func errBadRequestf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}
