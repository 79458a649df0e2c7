package web

import (
	"context"
	"errors"
	"net/http"

	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/users"
)

// The organizer's and the admin's pages.

// typeSales is how a ticket type of a concert sells.
type typeSales struct {
	Name                 string
	Price                money.Money
	Capacity, Sold, Held int
	Left                 int
}

// dashboardConcert is a concert on the organizer's dashboard.
type dashboardConcert struct {
	concerts.Details
	Types   []typeSales
	Revenue []finance.Revenue
}

func (p *pages) organizer(r *http.Request, v Viewer) (page, error) {
	ctx, db := r.Context(), p.s.cfg.DB.DB()
	ids, err := p.organizerConcerts(ctx, v.ID)
	if err != nil {
		return page{}, err
	}
	revenue, err := finance.OrganizerRevenue(ctx, db, v.ID)
	if err != nil {
		return page{}, err
	}
	byConcert := map[string][]finance.Revenue{}
	for _, rv := range revenue {
		if _, ok := byConcert[rv.ConcertID]; !ok {
			ids = append(ids, rv.ConcertID)
		}
		byConcert[rv.ConcertID] = append(byConcert[rv.ConcertID], rv)
	}
	seen := map[string]bool{}
	var out []dashboardConcert
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		d, err := app.ConcertDetails(ctx, db, id)
		if errors.Is(err, concerts.ErrNotFound) {
			continue
		}
		if err != nil {
			return page{}, err
		}
		res, err := reservations.ConcertReservationsOf(ctx, db, id)
		if err != nil {
			return page{}, err
		}
		c := dashboardConcert{Details: d, Revenue: byConcert[id]}
		for _, tt := range d.TicketTypes {
			c.Types = append(c.Types, typeSales{Name: tt.Name, Price: tt.Price, Capacity: tt.Capacity,
				Sold: res.Confirmed[tt.Name], Held: res.Held[tt.Name], Left: tt.Left})
		}
		out = append(out, c)
	}
	return page{Template: "organizer.html", Title: "Your concerts", Data: out}, nil
}

// organizerConcerts returns the IDs of the concerts on sale that
// organizerID organizes. No read model knows a concert's organizer yet, so
// each concert on sale is loaded from its stream; a concerts-by-organizer
// read model would replace this loop.
func (p *pages) organizerConcerts(ctx context.Context, organizerID string) ([]string, error) {
	available, err := concerts.AvailableConcerts(ctx, p.s.cfg.DB.DB(), p.s.cfg.Clock.Now())
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, a := range available {
		c, _, err := p.s.cfg.App.Concerts.Load(ctx, concerts.Stream(a.ConcertID))
		if err != nil {
			return nil, err
		}
		if c.OrganizerID == organizerID {
			ids = append(ids, a.ConcertID)
		}
	}
	return ids, nil
}

func (p *pages) newConcert(*http.Request, Viewer) (page, error) {
	// Three rows of ticket types; empty rows are left out.
	return page{Template: "newconcert.html", Title: "New concert", Data: []int{1, 2, 3}}, nil
}

func (p *pages) users(r *http.Request, _ Viewer) (page, error) {
	list, err := users.Accounts(r.Context(), p.s.cfg.DB.DB())
	if err != nil {
		return page{}, err
	}
	data := struct {
		Users []users.Account
		Roles []users.Role
	}{list, []users.Role{users.Customer, users.Organizer, users.Admin}}
	return page{Template: "users.html", Title: "Users", Data: data}, nil
}
