package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/users"
)

// concertOut is a concert as the API shows it.
type concertOut struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Artist      string          `json:"artist"`
	Venue       string          `json:"venue"`
	StartsAt    time.Time       `json:"startsAt"`
	Cancelled   bool            `json:"cancelled"`
	SeatsLeft   int             `json:"seatsLeft"`
	TicketTypes []ticketTypeOut `json:"ticketTypes,omitempty"`
}

type ticketTypeOut struct {
	Name      string      `json:"name"`
	Price     money.Money `json:"price"`
	Capacity  int         `json:"capacity"`
	SeatsLeft int         `json:"seatsLeft"`
}

func concertFrom(d concerts.Details, withTypes bool) concertOut {
	c := concertOut{ID: d.ConcertID, Name: d.Name, Artist: d.Artist, Venue: d.Venue, StartsAt: d.StartsAt, Cancelled: d.Cancelled}
	for _, t := range d.TicketTypes {
		c.SeatsLeft += t.Left
		if withTypes {
			c.TicketTypes = append(c.TicketTypes, ticketTypeOut{Name: t.Name, Price: t.Price, Capacity: t.Capacity, SeatsLeft: t.Left})
		}
	}
	return c
}

func (s *Server) listConcerts(w http.ResponseWriter, r *http.Request, _ Viewer) error {
	db := s.cfg.DB.DB()
	avail, err := concerts.AvailableConcerts(r.Context(), db, s.cfg.Clock.Now())
	if err != nil {
		return err
	}
	out := []concertOut{}
	for _, a := range avail {
		d, err := app.ConcertDetails(r.Context(), db, a.ConcertID)
		if err != nil {
			return err
		}
		out = append(out, concertFrom(d, false))
	}
	return ok(w, out)
}

// getConcert answers the concert's details (a read model) with the ETag of
// the concert's stream, which PUT .../ticket-types expects in If-Match.
func (s *Server) getConcert(w http.ResponseWriter, r *http.Request, _ Viewer) error {
	id, err := concertParam(r, "id")
	if err != nil {
		return err
	}
	c, version, err := s.cfg.App.Concerts.Load(r.Context(), concerts.Stream(id))
	if err != nil {
		return err
	}
	if !c.Exists() {
		return fmt.Errorf("%w: %s", concerts.ErrNoConcert, id)
	}
	d, err := app.ConcertDetails(r.Context(), s.cfg.DB.DB(), id)
	if errors.Is(err, concerts.ErrNotFound) {
		// Created a moment ago: the read model has not caught up. The
		// organizer who just made it reads it from its streams instead.
		d, err = s.detailsFromStreams(r, c)
	}
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(version))
	return ok(w, concertFrom(d, true))
}

// detailsFromStreams is a concert's details from its own stream and its
// inventory's, as the read model will have them.
func (s *Server) detailsFromStreams(r *http.Request, c concerts.Concert) (concerts.Details, error) {
	inv, err := s.cfg.App.Inventory(r.Context(), c.ID)
	if err != nil {
		return concerts.Details{}, err
	}
	d := concerts.Details{ConcertID: c.ID, Name: c.Name, Artist: c.Artist, StartsAt: c.StartsAt, Venue: c.Venue, Cancelled: c.Cancelled}
	for _, tt := range c.TicketTypes {
		d.TicketTypes = append(d.TicketTypes, concerts.TicketTypeDetails{Name: tt.Name, Price: tt.Price,
			Capacity: inv.Capacity[tt.Name], Left: inv.Left(tt.Name)})
	}
	return d, nil
}

type ticketTypeIn struct {
	Name  string      `json:"name"`
	Price money.Money `json:"price"`
}

func ticketTypesOf(in []ticketTypeIn) []concerts.TicketType {
	out := make([]concerts.TicketType, len(in))
	for i, t := range in {
		out[i] = concerts.TicketType{Name: t.Name, Price: t.Price}
	}
	return out
}

type newConcert struct {
	Name        string         `json:"name"`
	Artist      string         `json:"artist"`
	Venue       string         `json:"venue"`
	StartsAt    time.Time      `json:"startsAt"`
	TicketTypes []ticketTypeIn `json:"ticketTypes"`
	Capacity    map[string]int `json:"capacity"`
}

// createConcert announces a concert organized by the viewer. The concert
// ID is the command ID (from the Idempotency-Key), so a retried POST
// answers the same concert.
func (s *Server) createConcert(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := require(v, users.Organizer); err != nil {
		return err
	}
	in, err := decode[newConcert](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	id, err := s.commandID(r, "create-concert")
	if err != nil {
		return err
	}
	err = s.cfg.App.CreateConcert(r.Context(), id, concerts.CreateConcert{ConcertID: id, Name: in.Name, Artist: in.Artist,
		Venue: in.Venue, StartsAt: in.StartsAt, TicketTypes: ticketTypesOf(in.TicketTypes), Capacity: in.Capacity, OrganizerID: v.ID})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/concerts/"+id)
	return created(w, id)
}

// ownConcert returns the path's concert and its version if the viewer is
// an organizer and organizes it.
func (s *Server) ownConcert(ctx context.Context, r *http.Request, v Viewer) (concerts.Concert, int64, error) {
	if err := require(v, users.Organizer); err != nil {
		return concerts.Concert{}, 0, err
	}
	id, err := concertParam(r, "id")
	if err != nil {
		return concerts.Concert{}, 0, err
	}
	c, version, err := s.cfg.App.Concerts.Load(ctx, concerts.Stream(id))
	switch {
	case err != nil:
		return c, 0, err
	case !c.Exists():
		return c, 0, fmt.Errorf("%w: %s", concerts.ErrNoConcert, id)
	case c.OrganizerID != v.ID:
		return c, 0, fmt.Errorf("%w: concert %s is another organizer's", errWrongRole, id)
	}
	return c, version, nil
}

type ticketTypesIn struct {
	TicketTypes []ticketTypeIn `json:"ticketTypes"`
	Capacity    map[string]int `json:"capacity"`
}

// updateTicketTypes changes prices and capacities, decided on the version
// the client read (If-Match, required).
func (s *Server) updateTicketTypes(w http.ResponseWriter, r *http.Request, v Viewer) error {
	c, _, err := s.ownConcert(r.Context(), r, v)
	if err != nil {
		return err
	}
	in, err := decode[ticketTypesIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	version, found, err := ifMatch(r)
	if err != nil {
		return err
	}
	if !found {
		return errPreconditionRequired
	}
	cmdID, err := s.commandID(r, "ticket-types")
	if err != nil {
		return err
	}
	cmd := concerts.UpdateTicketTypes{ConcertID: c.ID, TicketTypes: ticketTypesOf(in.TicketTypes), Capacity: in.Capacity}
	if version == anyVersion {
		// "*": the concert exists (ownConcert found it), so it matches.
		err = s.cfg.App.UpdateTicketTypes(r.Context(), cmdID, cmd)
	} else {
		err = s.cfg.App.UpdateTicketTypesAt(r.Context(), cmdID, version, cmd)
	}
	if err != nil {
		return precondition(err)
	}
	return noContent(w)
}

type reasonIn struct {
	Reason string `json:"reason"`
}

func (s *Server) cancelConcert(w http.ResponseWriter, r *http.Request, v Viewer) error {
	c, _, err := s.ownConcert(r.Context(), r, v)
	if err != nil {
		return err
	}
	in, err := decode[reasonIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	cmdID, err := s.commandID(r, "cancel-concert")
	if err != nil {
		return err
	}
	if err := s.cfg.App.CancelConcert(r.Context(), cmdID, concerts.CancelConcert{ConcertID: c.ID, Reason: in.Reason}); err != nil {
		return err
	}
	return noContent(w)
}

// salesOut is what a concert sold: tickets by type and status, seats held
// and confirmed, and the money.
type salesOut struct {
	ConcertID string           `json:"concertId"`
	Tickets   []ticketCountOut `json:"tickets"`
	Held      map[string]int   `json:"held"`
	Confirmed map[string]int   `json:"confirmed"`
	Revenue   []revenueOut     `json:"revenue"`
}

type ticketCountOut struct {
	TicketType string `json:"ticketType"`
	Issued     int    `json:"issued"`
	Used       int    `json:"used"`
	Voided     int    `json:"voided"`
}

type revenueOut struct {
	ConcertID string      `json:"concertId"`
	Sold      money.Money `json:"sold"`
	Refunded  money.Money `json:"refunded"`
	Net       money.Money `json:"net"`
	Payments  int         `json:"payments"`
}

func revenueFrom(r finance.Revenue) revenueOut {
	return revenueOut{ConcertID: r.ConcertID, Sold: r.Sold, Refunded: r.Refunded, Net: r.Net, Payments: r.Payments}
}

func (s *Server) concertSales(w http.ResponseWriter, r *http.Request, v Viewer) error {
	c, _, err := s.ownConcert(r.Context(), r, v)
	if err != nil {
		return err
	}
	db := s.cfg.DB.DB()
	sum, err := tickets.ConcertTicketSummaryOf(r.Context(), db, c.ID)
	if err != nil {
		return err
	}
	res, err := reservations.ConcertReservationsOf(r.Context(), db, c.ID)
	if err != nil {
		return err
	}
	rev, err := finance.OrganizerRevenue(r.Context(), db, v.ID)
	if err != nil {
		return err
	}
	out := salesOut{ConcertID: c.ID, Tickets: []ticketCountOut{}, Held: res.Held, Confirmed: res.Confirmed, Revenue: []revenueOut{}}
	for _, t := range sum.Types {
		out.Tickets = append(out.Tickets, ticketCountOut{TicketType: t.TicketType, Issued: t.Issued, Used: t.Used, Voided: t.Voided})
	}
	for _, x := range rev {
		if x.ConcertID == c.ID {
			out.Revenue = append(out.Revenue, revenueFrom(x))
		}
	}
	return ok(w, out)
}

type scanIn struct {
	Code string `json:"code"`
	Gate string `json:"gate"`
}

type admissionOut struct {
	TicketID   string    `json:"ticketId"`
	ConcertID  string    `json:"concertId"`
	TicketType string    `json:"ticketType"`
	Gate       string    `json:"gate"`
	At         time.Time `json:"at"`
}

// scanTicket is the gate: the concert's organizer admits the ticket whose
// code was scanned. The Idempotency-Key identifies the scan, so a gate's
// retry is told the ticket was admitted, not that it was used.
func (s *Server) scanTicket(w http.ResponseWriter, r *http.Request, v Viewer) error {
	c, _, err := s.ownConcert(r.Context(), r, v)
	if err != nil {
		return err
	}
	in, err := decode[scanIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	cmdID, err := s.commandID(r, "scan")
	if err != nil {
		return err
	}
	a, err := s.cfg.App.ScanTicket(r.Context(), cmdID, tickets.Scan{Code: in.Code, ConcertID: c.ID, Gate: in.Gate})
	if err != nil {
		return err
	}
	return ok(w, admissionOut{TicketID: a.TicketID, ConcertID: a.ConcertID, TicketType: a.TicketType, Gate: a.Gate, At: a.At})
}
