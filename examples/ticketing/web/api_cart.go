package web

import (
	"fmt"
	"net/http"

	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/money"
)

// The cart is the viewer's own (stream "cart-<user ID>"): there is no cart
// ID in the paths, so no customer can name another's.

type cartOut struct {
	Open     bool          `json:"open"`
	Lines    []cartLineOut `json:"lines"`
	Total    money.Money   `json:"total"`
	Delivery *deliveryIO   `json:"delivery"`
}

type cartLineOut struct {
	ConcertID   string      `json:"concertId"`
	ConcertName string      `json:"concertName"`
	TicketType  string      `json:"ticketType"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unitPrice"`
}

// deliveryIO is a delivery choice, in and out.
type deliveryIO struct {
	Method  string     `json:"method"`
	Email   string     `json:"email,omitempty"`
	Address *addressIO `json:"address,omitempty"`
}

type addressIO struct {
	Name       string `json:"name"`
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postalCode"`
	Country    string `json:"country"`
}

func (d deliveryIO) delivery() carts.Delivery {
	out := carts.Delivery{Method: d.Method, Email: d.Email}
	if a := d.Address; a != nil {
		out.Address = &carts.PostalAddress{Name: a.Name, Street: a.Street, City: a.City, PostalCode: a.PostalCode, Country: a.Country}
	}
	return out
}

func deliveryFrom(d carts.Delivery) *deliveryIO {
	out := &deliveryIO{Method: d.Method, Email: d.Email}
	if a := d.Address; a != nil {
		out.Address = &addressIO{Name: a.Name, Street: a.Street, City: a.City, PostalCode: a.PostalCode, Country: a.Country}
	}
	return out
}

// getCart answers the cart from its stream, not a read model, so that it
// and its ETag (the stream's version) are the same moment.
func (s *Server) getCart(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	c, version, err := s.cfg.App.Carts.Load(r.Context(), carts.Stream(v.ID))
	if err != nil {
		return err
	}
	out := cartOut{Open: c.Open, Lines: []cartLineOut{}}
	if c.Open {
		for _, l := range c.Lines {
			out.Lines = append(out.Lines, cartLineOut{ConcertID: l.ConcertID, ConcertName: l.ConcertName, TicketType: l.TicketType,
				Quantity: l.Quantity, UnitPrice: l.UnitPrice})
		}
		if out.Total, err = c.Total(); err != nil {
			return err
		}
		if c.Delivery != nil {
			out.Delivery = deliveryFrom(*c.Delivery)
		}
	}
	w.Header().Set("ETag", etag(version))
	return ok(w, out)
}

type addItemIn struct {
	ConcertID  string `json:"concertId"`
	TicketType string `json:"ticketType"`
	Quantity   int    `json:"quantity"`
}

// addToCart adds tickets to the cart; with If-Match, only to the cart the
// client read.
func (s *Server) addToCart(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	in, err := decode[addItemIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	if !validConcertID(in.ConcertID) {
		return errBadRequestf("concertId %q is not a concert ID", in.ConcertID)
	}
	cmdID, err := s.commandID(r, "add-to-cart")
	if err != nil {
		return err
	}
	version, found, err := s.cartIfMatch(r, v.ID)
	if err != nil {
		return err
	}
	if found {
		err = precondition(s.cfg.App.AddToCartAt(r.Context(), cmdID, version, v.ID, in.ConcertID, in.TicketType, in.Quantity))
	} else {
		err = s.cfg.App.AddToCart(r.Context(), cmdID, v.ID, in.ConcertID, in.TicketType, in.Quantity)
	}
	if err != nil {
		return err
	}
	return noContent(w)
}

type quantityIn struct {
	Quantity int `json:"quantity"`
}

// changeQuantity sets a line's quantity; with If-Match, only on the cart
// the client read.
func (s *Server) changeQuantity(w http.ResponseWriter, r *http.Request, v Viewer) error {
	concertID, ticketType, err := s.cartLine(r, v)
	if err != nil {
		return err
	}
	in, err := decode[quantityIn](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	return s.cartCommand(w, r, "change-quantity", carts.ChangeQuantity{UserID: v.ID, ConcertID: concertID, TicketType: ticketType,
		Quantity: in.Quantity})
}

func (s *Server) removeFromCart(w http.ResponseWriter, r *http.Request, v Viewer) error {
	concertID, ticketType, err := s.cartLine(r, v)
	if err != nil {
		return err
	}
	return s.cartCommand(w, r, "remove-item", carts.RemoveItem{UserID: v.ID, ConcertID: concertID, TicketType: ticketType})
}

// cartLine checks the viewer and returns the line named by the path.
func (s *Server) cartLine(r *http.Request, v Viewer) (concertID, ticketType string, err error) {
	if err := customer(v); err != nil {
		return "", "", err
	}
	if concertID, err = concertParam(r, "concertId"); err != nil {
		return "", "", err
	}
	ticketType, err = textParam(r, "ticketType")
	return concertID, ticketType, err
}

// cartCommand runs cmd on the viewer's cart: on the version of If-Match
// if the request has one (412 if the cart moved on), on the newest
// otherwise.
func (s *Server) cartCommand(w http.ResponseWriter, r *http.Request, kind string, cmd carts.Command) error {
	v := viewerOf(r.Context())
	cmdID, err := s.commandID(r, kind)
	if err != nil {
		return err
	}
	version, found, err := s.cartIfMatch(r, v.ID)
	if err != nil {
		return err
	}
	if found {
		_, err = s.cfg.App.Carts.HandleExpecting(r.Context(), cmdID, carts.Stream(v.ID), version, cmd)
		err = precondition(err)
	} else {
		_, err = s.cfg.App.Carts.Handle(r.Context(), cmdID, carts.Stream(v.ID), cmd)
	}
	if err != nil {
		return err
	}
	return noContent(w)
}

// cartIfMatch is ifMatch for the viewer's cart: "*" matches when the cart
// exists and then pins no version (found is false), for the client asked
// only that there be a cart.
func (s *Server) cartIfMatch(r *http.Request, userID string) (int64, bool, error) {
	version, found, err := ifMatch(r)
	if err != nil || version != anyVersion {
		return version, found, err
	}
	_, current, err := s.cfg.App.Carts.Load(r.Context(), carts.Stream(userID))
	if err != nil {
		return 0, false, err
	}
	if current == 0 {
		return 0, false, fmt.Errorf("%w: If-Match * but there is no cart", errPreconditionFailed)
	}
	return 0, false, nil
}

func (s *Server) chooseDelivery(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	in, err := decode[deliveryIO](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	d := in.delivery()
	if err := d.Validate(); err != nil { // input first: 400 whatever the cart's state
		return err
	}
	return s.cartCommand(w, r, "choose-delivery", carts.ChooseDelivery{UserID: v.ID, Delivery: d})
}

// checkout confirms the cart and places its orders, one per concert; with
// If-Match, only the cart the client read (412 if it changed since). The
// orders complete asynchronously (seats, payment, tickets), hence 202:
// GET /api/orders/{id} tells how each goes.
func (s *Server) checkout(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	cmdID, err := s.commandID(r, "checkout")
	if err != nil {
		return err
	}
	version, found, err := s.cartIfMatch(r, v.ID)
	if err != nil {
		return err
	}
	var orders map[string]string
	if found {
		orders, err = s.cfg.App.CheckoutAt(r.Context(), cmdID, version, v.ID)
		err = precondition(err)
	} else {
		orders, err = s.cfg.App.Checkout(r.Context(), cmdID, v.ID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]map[string]string{"orders": orders})
	return nil
}
