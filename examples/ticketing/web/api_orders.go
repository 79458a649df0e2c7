package web

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/tickets"
)

// Orders and tickets are their buyer's: another customer gets 404, as for
// an order or ticket that does not exist.

type orderOut struct {
	ID          string         `json:"id"`
	ConcertID   string         `json:"concertId"`
	ConcertName string         `json:"concertName,omitempty"`
	Tickets     int            `json:"tickets"`
	Total       money.Money    `json:"total"`
	Status      orders.Status  `json:"status"`
	Reason      string         `json:"reason,omitempty"`
	Lines       []orderLineOut `json:"lines,omitempty"`
	TicketIDs   []string       `json:"ticketIds,omitempty"`
	Refunded    *money.Money   `json:"refunded,omitempty"`
}

type orderLineOut struct {
	TicketType string      `json:"ticketType"`
	Quantity   int         `json:"quantity"`
	UnitPrice  money.Money `json:"unitPrice"`
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	list, err := orders.UserOrders(r.Context(), s.cfg.DB.DB(), v.ID)
	if err != nil {
		return err
	}
	out := []orderOut{}
	for _, o := range list {
		out = append(out, orderOut{ID: o.OrderID, ConcertID: o.ConcertID, ConcertName: o.ConcertName, Tickets: o.Tickets,
			Total: o.Total, Status: o.Status, Reason: o.Reason})
	}
	return ok(w, out)
}

// ownOrder returns the path's order if it is the viewer's. It reads the
// order process's state, not a read model, so the status is the newest.
func (s *Server) ownOrder(ctx context.Context, r *http.Request, v Viewer) (orders.Order, error) {
	if err := customer(v); err != nil {
		return orders.Order{}, err
	}
	id, err := uuidParam(r, "id")
	if err != nil {
		return orders.Order{}, err
	}
	o, err := s.cfg.App.Order(ctx, id)
	if err != nil {
		return o, err
	}
	if o.UserID != v.ID {
		return orders.Order{}, fmt.Errorf("%w: %s", orders.ErrNoOrder, id)
	}
	return o, nil
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request, v Viewer) error {
	o, err := s.ownOrder(r.Context(), r, v)
	if err != nil {
		return err
	}
	out := orderOut{ID: o.ID, ConcertID: o.ConcertID, Total: o.Total, Status: o.Status, Reason: o.Reason,
		TicketIDs: o.TicketIDs, Lines: []orderLineOut{}}
	for _, l := range o.Lines {
		out.ConcertName = l.ConcertName
		out.Tickets += l.Quantity
		out.Lines = append(out.Lines, orderLineOut{TicketType: l.TicketType, Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	if o.Refunded.Amount > 0 {
		out.Refunded = &o.Refunded
	}
	return ok(w, out)
}

// cancelOrder cancels the viewer's unpaid order.
func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request, v Viewer) error {
	o, err := s.ownOrder(r.Context(), r, v)
	if err != nil {
		return err
	}
	in, err := decode[reasonIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	if o.Status.Final() || o.Status == orders.Paid || o.Status == orders.Confirmed {
		// The process would ignore the request; the buyer should hear why.
		return fmt.Errorf("%w: the order is %s", orders.ErrTooLateToCancel, o.Status)
	}
	cmdID, err := s.commandID(r, "cancel-order")
	if err != nil {
		return err
	}
	if err := s.cfg.App.CancelOrder(r.Context(), cmdID, v.ID, o.ID, in.Reason); err != nil {
		return err
	}
	return noContent(w)
}

type ticketOut struct {
	ID         string                 `json:"id"`
	OrderID    string                 `json:"orderId"`
	ConcertID  string                 `json:"concertId"`
	TicketType string                 `json:"ticketType"`
	Seat       int                    `json:"seat"`
	Status     tickets.TicketStatus   `json:"status"`
	Delivery   tickets.DeliveryStatus `json:"delivery"`
}

type ticketDetailsOut struct {
	ticketOut
	Code       string            `json:"code"`
	IssuedAt   time.Time         `json:"issuedAt"`
	Gate       string            `json:"gate,omitempty"`
	AdmittedAt *time.Time        `json:"admittedAt,omitempty"`
	VoidReason string            `json:"voidReason,omitempty"`
	Validation string            `json:"validation"`
	Sending    ticketDeliveryOut `json:"sending"`
}

type ticketDeliveryOut struct {
	Method      string    `json:"method"`
	Destination string    `json:"destination"`
	Attempt     int       `json:"attempt"`
	Reference   string    `json:"reference,omitempty"`
	LastError   string    `json:"lastError,omitempty"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func (s *Server) listTickets(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	list, err := tickets.UserTickets(r.Context(), s.cfg.DB.DB(), v.ID)
	if err != nil {
		return err
	}
	out := []ticketOut{}
	for _, t := range list {
		out = append(out, ticketOut{ID: t.TicketID, OrderID: t.OrderID, ConcertID: t.ConcertID, TicketType: t.TicketType,
			Seat: t.Seat, Status: t.Status, Delivery: t.Delivery})
	}
	return ok(w, out)
}

// ownTicket returns the path's ticket if it is the viewer's.
func (s *Server) ownTicket(ctx context.Context, r *http.Request, v Viewer) (tickets.TicketDetails, error) {
	if err := customer(v); err != nil {
		return tickets.TicketDetails{}, err
	}
	id, err := uuidParam(r, "id")
	if err != nil {
		return tickets.TicketDetails{}, err
	}
	t, err := tickets.TicketDetailsOf(ctx, s.cfg.DB.DB(), id)
	if err != nil {
		return t, err
	}
	if t.UserID != v.ID {
		return tickets.TicketDetails{}, fmt.Errorf("%w: %s", tickets.ErrUnknownTicket, id)
	}
	return t, nil
}

func (s *Server) getTicket(w http.ResponseWriter, r *http.Request, v Viewer) error {
	t, err := s.ownTicket(r.Context(), r, v)
	if err != nil {
		return err
	}
	db := s.cfg.DB.DB()
	del, err := tickets.DeliveryStatusOf(r.Context(), db, t.TicketID)
	if err != nil {
		return err
	}
	val, err := tickets.ValidationStatusOf(r.Context(), db, t.TicketID)
	if err != nil {
		return err
	}
	out := ticketDetailsOut{
		ticketOut: ticketOut{ID: t.TicketID, OrderID: t.OrderID, ConcertID: t.ConcertID, TicketType: t.TicketType, Seat: t.Seat,
			Status: t.Status, Delivery: del.Status},
		Code: t.Code, IssuedAt: t.IssuedAt, Gate: t.Gate, VoidReason: t.VoidReason, Validation: val.Message,
		Sending: ticketDeliveryOut{Method: del.Method, Destination: del.Destination, Attempt: del.Attempt, Reference: del.Reference,
			LastError: del.LastError, UpdatedAt: del.UpdatedAt},
	}
	if !t.AdmittedAt.IsZero() {
		out.AdmittedAt = &t.AdmittedAt
	}
	return ok(w, out)
}

func (s *Server) ticketQR(w http.ResponseWriter, r *http.Request, v Viewer) error {
	t, err := s.ownTicket(r.Context(), r, v)
	if err != nil {
		return err
	}
	png, err := tickets.QRCode(t.Code)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "private, no-store") // the code admits its holder
	_, _ = w.Write(png)
	return nil
}

type resendIn struct {
	Delivery *deliveryIO `json:"delivery"`
}

// resendTicket sends the viewer's ticket again, where it went before or
// as the body says. The Idempotency-Key makes a retry send once.
func (s *Server) resendTicket(w http.ResponseWriter, r *http.Request, v Viewer) error {
	t, err := s.ownTicket(r.Context(), r, v)
	if err != nil {
		return err
	}
	var in resendIn
	if r.ContentLength != 0 {
		if in, err = decode[resendIn](w, r, s.cfg.MaxBodyBytes); err != nil {
			return err
		}
	}
	var to *tickets.Delivery
	if in.Delivery != nil {
		d := in.Delivery.delivery()
		to = &tickets.Delivery{Method: d.Method, Email: d.Email}
		if a := d.Address; a != nil {
			to.Address = &tickets.PostalAddress{Name: a.Name, Street: a.Street, City: a.City, PostalCode: a.PostalCode, Country: a.Country}
		}
	}
	cmdID, err := s.commandID(r, "resend")
	if err != nil {
		return err
	}
	if err := s.cfg.App.ResendTicket(r.Context(), cmdID, t.TicketID, to); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}
