package web

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"

	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/tickets"
)

// The buyer's pages: concerts, log-in and registration, cart, orders and
// tickets.

// concertEntry is a concert on sale with the seats it has left.
type concertEntry struct {
	concerts.Available
	Left int
}

func (p *pages) concerts(r *http.Request, _ Viewer) (page, error) {
	ctx, db := r.Context(), p.s.cfg.DB.DB()
	available, err := concerts.AvailableConcerts(ctx, db, p.s.cfg.Clock.Now())
	if err != nil {
		return page{}, err
	}
	out := make([]concertEntry, 0, len(available))
	for _, a := range available {
		e := concertEntry{Available: a}
		d, err := app.ConcertDetails(ctx, db, a.ConcertID)
		if err != nil && !errors.Is(err, concerts.ErrNotFound) { // the two read models may be a moment apart
			return page{}, err
		}
		for _, tt := range d.TicketTypes {
			e.Left += max(tt.Left, 0)
		}
		out = append(out, e)
	}
	return page{Template: "concerts.html", Title: "Concerts", Data: out}, nil
}

func (p *pages) concert(r *http.Request, _ Viewer) (page, error) {
	d, err := app.ConcertDetails(r.Context(), p.s.cfg.DB.DB(), r.PathValue("id"))
	if errors.Is(err, concerts.ErrNotFound) {
		return page{}, fmt.Errorf("%w: %v", errNotFound, err)
	}
	if err != nil {
		return page{}, err
	}
	return page{Template: "concert.html", Title: d.Name, Data: d}, nil
}

func (p *pages) register(r *http.Request, _ Viewer) (page, error) {
	return page{Template: "register.html", Title: "Register", Data: localPath(r.URL.Query().Get("next"))}, nil
}

func (p *pages) logIn(r *http.Request, _ Viewer) (page, error) {
	return page{Template: "login.html", Title: "Log in", Data: localPath(r.URL.Query().Get("next"))}, nil
}

// cartLine is a line of the cart with its subtotal.
type cartLine struct {
	carts.Line
	Subtotal money.Money
}

func (p *pages) cart(r *http.Request, v Viewer) (page, error) {
	// The cart is read from its own stream, not from the read models: the
	// buyer comes here right after adding a line, and a read model may not
	// have it yet. One user's cart is a short stream; the read models
	// serve the lists.
	c, _, err := p.s.cfg.App.Carts.Load(r.Context(), carts.Stream(v.ID))
	if err != nil {
		return page{}, err
	}
	if !c.Open {
		c.Lines = nil // a checked-out cart's lines are an order's now
	}
	total, err := c.Total()
	if err != nil {
		return page{}, err
	}
	data := struct {
		Lines []cartLine
		Total money.Money
		Email string
	}{Total: total, Email: v.Email}
	for _, l := range c.Lines {
		sub, err := l.UnitPrice.Times(l.Quantity)
		if err != nil {
			return page{}, err
		}
		data.Lines = append(data.Lines, cartLine{Line: l, Subtotal: sub})
	}
	return page{Template: "cart.html", Title: "Your cart", Data: data}, nil
}

func (p *pages) orders(r *http.Request, v Viewer) (page, error) {
	list, err := orders.UserOrders(r.Context(), p.s.cfg.DB.DB(), v.ID)
	if err != nil {
		return page{}, err
	}
	return page{Template: "orders.html", Title: "Your orders", Data: list}, nil
}

func (p *pages) order(r *http.Request, v Viewer) (page, error) {
	id := r.PathValue("id")
	d, err := orders.DetailsOf(r.Context(), p.s.cfg.DB.DB(), id)
	if errors.Is(err, sql.ErrNoRows) || err == nil && d.UserID != v.ID {
		// Another user's order is as unknown as one that does not exist.
		return page{}, fmt.Errorf("%w: order %s", errNotFound, id)
	}
	if err != nil {
		return page{}, err
	}
	name := ""
	if len(d.Lines) > 0 {
		name = d.Lines[0].ConcertName
	}
	data := struct {
		orders.Details
		ConcertName string
		Final       bool
	}{d, name, d.Status.Final()}
	return page{Template: "order.html", Title: "Order for " + name, Data: data}, nil
}

// ticketEntry is a ticket with its concert's name and its QR code.
type ticketEntry struct {
	tickets.TicketDetails
	ConcertName string
	Delivery    tickets.DeliveryStatus
	QR          template.URL
}

func (p *pages) tickets(r *http.Request, v Viewer) (page, error) {
	ctx, db := r.Context(), p.s.cfg.DB.DB()
	list, err := tickets.UserTickets(ctx, db, v.ID)
	if err != nil {
		return page{}, err
	}
	names := map[string]string{}
	out := make([]ticketEntry, 0, len(list))
	for _, t := range list {
		e, err := p.ticketEntry(ctx, t.TicketID, names)
		if errors.Is(err, tickets.ErrUnknownTicket) {
			continue // the details read model is a moment behind
		}
		if err != nil {
			return page{}, err
		}
		e.Delivery = t.Delivery
		out = append(out, e)
	}
	return page{Template: "tickets.html", Title: "Your tickets", Data: out}, nil
}

func (p *pages) ticket(r *http.Request, v Viewer) (page, error) {
	id := r.PathValue("id")
	e, err := p.ticketEntry(r.Context(), id, map[string]string{})
	if errors.Is(err, tickets.ErrUnknownTicket) || err == nil && e.UserID != v.ID {
		return page{}, fmt.Errorf("%w: ticket %s", errNotFound, id)
	}
	if err != nil {
		return page{}, err
	}
	return page{Template: "ticket.html", Title: "Ticket for " + e.ConcertName, Data: e}, nil
}

// ticketEntry reads a ticket's details, its concert's name (remembered in
// names) and draws its QR code.
func (p *pages) ticketEntry(ctx context.Context, ticketID string, names map[string]string) (ticketEntry, error) {
	db := p.s.cfg.DB.DB()
	d, err := tickets.TicketDetailsOf(ctx, db, ticketID)
	if err != nil {
		return ticketEntry{}, err
	}
	name, ok := names[d.ConcertID]
	if !ok {
		c, err := concerts.DetailsOf(ctx, db, d.ConcertID)
		if err != nil && !errors.Is(err, concerts.ErrNotFound) {
			return ticketEntry{}, err
		}
		name = c.Name
		names[d.ConcertID] = name
	}
	png, err := tickets.QRCode(d.Code)
	if err != nil {
		return ticketEntry{}, err
	}
	// A data: URL of a PNG we drew ourselves is safe to trust.
	qr := template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	return ticketEntry{TicketDetails: d, ConcertName: name, QR: qr}, nil
}
