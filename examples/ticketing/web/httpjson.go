package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/users"
)

// Refusals of malformed requests.
var (
	errBadRequest       = errors.New("web: bad request")
	errUnsupportedMedia = errors.New("web: send application/json")
	errTooLarge         = errors.New("web: request body too large")
	errTooManyLogIns    = errors.New("web: too many failed log-ins; try again later")
	errNotFound         = errors.New("web: not found")
)

// decode reads the request body as one JSON value of type T: the content
// type must be application/json, the body at most max bytes, and fields
// unknown to T or data after the value are refused.
func decode[T any](w http.ResponseWriter, r *http.Request, max int64) (T, error) {
	var v T
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return v, errUnsupportedMedia
	}
	r.Body = http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return v, errTooLarge
		}
		return v, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return v, errTooLarge
		}
		return v, fmt.Errorf("%w: data after the JSON value", errBadRequest)
	}
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		// The request as understood, for the Idempotency-Key's fingerprint.
		info.request, _ = json.Marshal(v) // v was just decoded from JSON: it encodes
	}
	return v, nil
}

// writeJSON writes v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// problem is the JSON body of an error response.
type problem struct {
	Error string `json:"error"`
}

// statusOf maps an error to its HTTP status: the web layer's refusals,
// then each module's business rules and validation errors (see
// errorStatuses), and 500 for anything else.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errNotLoggedIn):
		return http.StatusUnauthorized
	case errors.Is(err, errWrongRole):
		return http.StatusForbidden
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errUnsupportedMedia):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errTooManyLogIns):
		return http.StatusTooManyRequests
	case errors.Is(err, errKeyReused):
		return http.StatusUnprocessableEntity
	}
	for _, e := range errorStatuses() {
		if errors.Is(err, e.err) {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

type errorStatus struct {
	err    error
	status int
}

// errorStatuses lists the modules' errors with their statuses: 400 for
// invalid input, 401 for bad credentials, 403 for a rule about who may act,
// 404 for what does not exist, 409 for a conflict with what exists (taken,
// changed meanwhile), 422 for a business rule the request breaks.
func errorStatuses() []errorStatus {
	return []errorStatus{
		// The API's preconditions, before es.ErrConcurrency, which a
		// failed precondition wraps.
		{errPreconditionRequired, http.StatusPreconditionRequired},
		{errPreconditionFailed, http.StatusPreconditionFailed},

		{users.ErrInvalidCredentials, http.StatusUnauthorized},
		{users.ErrInvalidEmail, http.StatusBadRequest},
		{users.ErrWeakPassword, http.StatusBadRequest},
		{users.ErrPasswordTooLong, http.StatusBadRequest},
		{users.ErrUnknownRole, http.StatusBadRequest},
		{users.ErrInvalidUser, http.StatusBadRequest},
		{users.ErrForbidden, http.StatusForbidden},
		{users.ErrNoUser, http.StatusNotFound},
		{users.ErrEmailTaken, http.StatusConflict},
		{users.ErrUserExists, http.StatusConflict},
		{users.ErrNotFound, http.StatusNotFound},

		// Module validation errors come before money's, which they may
		// wrap as the detail.
		{concerts.ErrInvalidConcert, http.StatusBadRequest},
		{concerts.ErrNoConcert, http.StatusNotFound},
		{concerts.ErrNotFound, http.StatusNotFound},
		{concerts.ErrConcertExists, http.StatusConflict},
		{concerts.ErrConcertCancelled, http.StatusUnprocessableEntity},
		{concerts.ErrInThePast, http.StatusUnprocessableEntity},
		{concerts.ErrUnknownTicketType, http.StatusUnprocessableEntity},
		{concerts.ErrConcertStarted, http.StatusUnprocessableEntity},

		{carts.ErrInvalidQuantity, http.StatusBadRequest},
		{carts.ErrInvalidItem, http.StatusBadRequest},
		{carts.ErrInvalidDelivery, http.StatusBadRequest},
		{carts.ErrUnknownLine, http.StatusNotFound},
		{carts.ErrNoOpenCart, http.StatusUnprocessableEntity},
		{carts.ErrEmptyCart, http.StatusUnprocessableEntity},
		{carts.ErrNoDelivery, http.StatusUnprocessableEntity},

		{reservations.ErrInvalidSeats, http.StatusBadRequest},
		{reservations.ErrUserRequired, http.StatusBadRequest},
		{reservations.ErrNoExpiry, http.StatusBadRequest},
		{reservations.ErrNoReservationID, http.StatusBadRequest},
		{reservations.ErrUnknownReservation, http.StatusNotFound},
		{reservations.ErrInventoryExists, http.StatusConflict},
		{reservations.ErrReservationExists, http.StatusConflict},
		{reservations.ErrSoldOut, http.StatusUnprocessableEntity},
		{reservations.ErrNoInventory, http.StatusUnprocessableEntity},
		{reservations.ErrSalesClosed, http.StatusUnprocessableEntity},
		{reservations.ErrUnknownTicketType, http.StatusUnprocessableEntity},
		{reservations.ErrCapacityBelowReserved, http.StatusUnprocessableEntity},
		{reservations.ErrReservationReleased, http.StatusUnprocessableEntity},
		{reservations.ErrReservationConfirmed, http.StatusUnprocessableEntity},
		{reservations.ErrConcertStarted, http.StatusUnprocessableEntity},

		{orders.ErrInvalidOrder, http.StatusBadRequest},
		{orders.ErrNoOrder, http.StatusNotFound},
		{orders.ErrTooLateToCancel, http.StatusUnprocessableEntity},

		{tickets.ErrInvalidDelivery, http.StatusBadRequest},
		{tickets.ErrInvalidDeliveryCommand, http.StatusBadRequest},
		{tickets.ErrInvalidIssue, http.StatusBadRequest},
		{tickets.ErrInvalidTicket, http.StatusBadRequest},
		{tickets.ErrUnknownTicket, http.StatusNotFound},
		{tickets.ErrAlreadyUsed, http.StatusConflict},
		{tickets.ErrDeliveryInProgress, http.StatusConflict},
		{tickets.ErrInvalidCode, http.StatusUnprocessableEntity}, // forged or replaced: it admits nobody
		{tickets.ErrTicketVoided, http.StatusUnprocessableEntity},
		{tickets.ErrWrongConcert, http.StatusUnprocessableEntity},
		{tickets.ErrTooManyResends, http.StatusUnprocessableEntity},

		{finance.ErrInvalidBillingInfo, http.StatusBadRequest},
		{finance.ErrInvalidInvoice, http.StatusBadRequest},
		{finance.ErrInvalidPayment, http.StatusBadRequest},
		{finance.ErrInvalidRefund, http.StatusBadRequest},
		{finance.ErrLinesDoNotAddUp, http.StatusBadRequest},
		{finance.ErrNoInvoice, http.StatusNotFound},
		{finance.ErrUnknownPayment, http.StatusNotFound},
		{finance.ErrUnknownRefund, http.StatusNotFound},
		{finance.ErrInvoiceImmutable, http.StatusConflict},
		{finance.ErrPaymentAlreadyRequested, http.StatusConflict},
		{finance.ErrCaptureMismatch, http.StatusConflict},
		{finance.ErrRefundIDReused, http.StatusConflict},
		{finance.ErrCreditExceedsInvoice, http.StatusUnprocessableEntity},
		{finance.ErrNotCaptured, http.StatusUnprocessableEntity},
		{finance.ErrRefundExceedsCapture, http.StatusUnprocessableEntity},
		{finance.ErrGatewayUnavailable, http.StatusServiceUnavailable},

		{money.ErrInvalidCurrency, http.StatusBadRequest},
		{money.ErrOverflow, http.StatusBadRequest},
		{money.ErrCurrencyMismatch, http.StatusUnprocessableEntity}, // a cart holds one currency

		{es.ErrConcurrency, http.StatusConflict},
		{es.ErrInvalidAppend, http.StatusBadRequest},
	}
}

// fail writes err as a problem. A 5xx is logged with the error and the
// client sees only "internal error"; a 4xx tells the client the rule.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := statusOf(err)
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok && info.claimedKey != "" {
		// The command failed and stored nothing: its key is free again.
		if rerr := s.keys.release(r.Context(), info.claimedKey); rerr != nil {
			s.cfg.Logger.ErrorContext(r.Context(), "web: give back an idempotency key", slog.Any("err", rerr))
		}
		info.claimedKey = ""
	}
	msg := err.Error()
	if status >= 500 {
		s.cfg.Logger.ErrorContext(r.Context(), "web: request failed", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Any("err", err))
		msg = "internal error"
	}
	if status == http.StatusUnauthorized && errors.Is(err, errNotLoggedIn) {
		w.Header().Set("WWW-Authenticate", `Cookie realm="ticketing"`)
	}
	writeJSON(w, status, problem{Error: msg})
}

// require refuses a request whose viewer is not logged in (401) or has
// none of roles (403); with no roles, any logged-in viewer passes.
func require(v Viewer, roles ...users.Role) error {
	if !v.LoggedIn() {
		return errNotLoggedIn
	}
	if len(roles) > 0 && !v.Is(roles...) {
		return errWrongRole
	}
	return nil
}
