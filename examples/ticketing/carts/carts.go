// Package carts is the ticketing example's shopping carts: one open cart
// per user, in the stream "cart-<user ID>", which cycles open → confirmed
// or cancelled → a new cart opens with the next item added.
//
// Corrections to the workshop design this comes from: its read models show
// a price and a concert name that its events do not carry. Here ItemAdded
// carries a snapshot of both, taken from the concert when the item is
// added, with the price's currency; a cart holds one currency only.
// Quantities are 1 to 10 per line (adding to an existing line increases
// it, within the limit; with prices bounded by package concerts, a line
// is at most 10^9 minor units and no cart total comes near overflowing),
// and removing a line that is not in the cart is an error rather than
// silently ignored.
//
// The buyer chooses how the tickets are delivered (e-mail, or a courier to
// a postal address) in the cart, before checkout; a cart without that
// choice cannot be confirmed. The choice travels with the order into the
// tickets module.
//
// Checkout confirms the cart and places its orders in one append (see
// package app). When an order cannot get its seats, the orders process
// sends RestoreItems, and the order's lines come back into the buyer's
// cart: a sold-out checkout never loses the cart (a line the open cart has
// already keeps the buyer's newer quantity).
package carts

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// MaxQuantity is the most tickets of one type and concert a cart line holds.
const MaxQuantity = 10

// Business errors of the carts module.
var (
	// ErrInvalidQuantity: a quantity outside 1..MaxQuantity.
	ErrInvalidQuantity = errors.New("carts: quantity must be between 1 and 10")
	// ErrNoOpenCart: the user has no open cart.
	ErrNoOpenCart = errors.New("carts: no open cart")
	// ErrUnknownLine: the cart has no line for that concert and ticket type.
	ErrUnknownLine = errors.New("carts: no such line in the cart")
	// ErrEmptyCart: an empty cart cannot be confirmed.
	ErrEmptyCart = errors.New("carts: the cart is empty")
	// ErrInvalidItem: a missing user, concert, ticket type or price.
	ErrInvalidItem = errors.New("carts: invalid item")
	// ErrNoDelivery: a cart is confirmed only once the buyer chose how
	// the tickets are delivered.
	ErrNoDelivery = errors.New("carts: no delivery method chosen")
	// ErrInvalidDelivery: an unknown delivery method, an e-mail delivery
	// without a valid address, or a courier delivery without a complete
	// postal address.
	ErrInvalidDelivery = errors.New("carts: invalid delivery")
)

// Delivery methods.
const (
	ByEmail   = "email"
	ByCourier = "courier"
)

// Delivery is how the buyer wants the tickets: by e-mail to Email, or by
// courier to Address.
type Delivery struct {
	Method  string         `json:"method"`
	Email   string         `json:"email,omitempty"`
	Address *PostalAddress `json:"address,omitempty"`
}

// PostalAddress is where a courier delivers printed tickets.
type PostalAddress struct {
	Name       string `json:"name"`
	Street     string `json:"street"`
	City       string `json:"city"`
	PostalCode string `json:"postal_code"`
	Country    string `json:"country"` // ISO 3166-1 alpha-2
}

// Validate reports whether d is a complete choice, wrapping
// ErrInvalidDelivery if not.
func (d Delivery) Validate() error {
	switch d.Method {
	case ByEmail:
		if d.Address != nil {
			return fmt.Errorf("%w: an e-mail delivery has no postal address", ErrInvalidDelivery)
		}
		if a, err := mail.ParseAddress(d.Email); err != nil || a.Address != d.Email {
			return fmt.Errorf("%w: %q is not an e-mail address", ErrInvalidDelivery, d.Email)
		}
	case ByCourier:
		a := d.Address
		if a == nil || strings.TrimSpace(a.Name) == "" || strings.TrimSpace(a.Street) == "" ||
			strings.TrimSpace(a.City) == "" || strings.TrimSpace(a.PostalCode) == "" {
			return fmt.Errorf("%w: a courier needs a name, street, city and postal code", ErrInvalidDelivery)
		}
		if len(a.Country) != 2 || strings.ToUpper(a.Country) != a.Country || strings.Trim(a.Country, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
			return fmt.Errorf("%w: country %q is not an ISO 3166-1 alpha-2 code", ErrInvalidDelivery, a.Country)
		}
	default:
		return fmt.Errorf("%w: unknown method %q (want %q or %q)", ErrInvalidDelivery, d.Method, ByEmail, ByCourier)
	}
	return nil
}

// Stream returns the cart stream of a user.
func Stream(userID string) string { return "cart-" + userID }

// Command is a command for a user's cart.
type Command interface{ isCommand() }

// AddItem adds tickets to the user's open cart, opening one if needed.
// ConcertName and UnitPrice are the concert's, looked up by the caller
// when the item is added.
type AddItem struct {
	UserID      string
	ConcertID   string
	ConcertName string
	TicketType  string
	Quantity    int
	UnitPrice   money.Money
}

// ChangeQuantity sets a line's quantity.
type ChangeQuantity struct {
	UserID     string
	ConcertID  string
	TicketType string
	Quantity   int
}

// RemoveItem removes a line.
type RemoveItem struct {
	UserID     string
	ConcertID  string
	TicketType string
}

// ChooseDelivery records how the tickets of the open cart are delivered.
type ChooseDelivery struct {
	UserID   string
	Delivery Delivery
}

// ConfirmCart closes the cart for checkout.
type ConfirmCart struct{ UserID string }

// CancelCart throws the cart away.
type CancelCart struct{ UserID string }

// RestoreItems puts the lines of an order that could not be placed back
// into the user's cart, opening one if none is open. Lines the open cart
// already has are left as the buyer has them now. It is also a message:
// the orders process sends it when an order is rejected, and its message
// ID is the command ID, so a redelivery restores nothing twice.
type RestoreItems struct {
	UserID  string `json:"user_id"`
	OrderID string `json:"order_id"`
	Lines   []Line `json:"lines"`
	// Delivery, when set, becomes the cart's choice if it has none.
	Delivery *Delivery `json:"delivery,omitempty"`
}

func (AddItem) isCommand()        {}
func (ChangeQuantity) isCommand() {}
func (RemoveItem) isCommand()     {}
func (ChooseDelivery) isCommand() {}
func (ConfirmCart) isCommand()    {}
func (CancelCart) isCommand()     {}
func (RestoreItems) isCommand()   {}

// Event is an event of a cart stream.
type Event interface{ isEvent() }

// CartOpened: the user's cart number CartNo is open.
type CartOpened struct {
	UserID string `json:"user_id"`
	CartNo int    `json:"cart_no"`
}

// ItemAdded: a new line, with the concert's name and price when added.
type ItemAdded struct {
	UserID      string      `json:"user_id"`
	CartNo      int         `json:"cart_no"`
	ConcertID   string      `json:"concert_id"`
	ConcertName string      `json:"concert_name"`
	TicketType  string      `json:"ticket_type"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
}

// QuantityChanged: a line now has Quantity tickets.
type QuantityChanged struct {
	UserID     string `json:"user_id"`
	CartNo     int    `json:"cart_no"`
	ConcertID  string `json:"concert_id"`
	TicketType string `json:"ticket_type"`
	Quantity   int    `json:"quantity"`
}

// ItemRemoved: a line was removed.
type ItemRemoved struct {
	UserID     string `json:"user_id"`
	CartNo     int    `json:"cart_no"`
	ConcertID  string `json:"concert_id"`
	TicketType string `json:"ticket_type"`
}

// DeliveryChosen: the tickets of cart CartNo go this way.
type DeliveryChosen struct {
	UserID   string   `json:"user_id"`
	CartNo   int      `json:"cart_no"`
	Delivery Delivery `json:"delivery"`
}

// ItemsRestored: the lines of an order that got no seats are back in cart
// CartNo (only those the cart did not have), with the order's delivery if
// the cart had no choice of its own.
type ItemsRestored struct {
	UserID   string    `json:"user_id"`
	CartNo   int       `json:"cart_no"`
	OrderID  string    `json:"order_id"`
	Lines    []Line    `json:"lines"`
	Delivery *Delivery `json:"delivery,omitempty"`
}

// CartConfirmed: the cart was checked out with these lines and total.
type CartConfirmed struct {
	UserID string      `json:"user_id"`
	CartNo int         `json:"cart_no"`
	Lines  []Line      `json:"lines"`
	Total  money.Money `json:"total"`
}

// CartCancelled: the cart was thrown away.
type CartCancelled struct {
	UserID string `json:"user_id"`
	CartNo int    `json:"cart_no"`
}

func (CartOpened) isEvent()      {}
func (ItemAdded) isEvent()       {}
func (QuantityChanged) isEvent() {}
func (ItemRemoved) isEvent()     {}
func (CartConfirmed) isEvent()   {}
func (CartCancelled) isEvent()   {}
func (DeliveryChosen) isEvent()  {}
func (ItemsRestored) isEvent()   {}

// Line is a cart line.
type Line struct {
	ConcertID   string      `json:"concert_id"`
	ConcertName string      `json:"concert_name"`
	TicketType  string      `json:"ticket_type"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
}

// Cart is the state of a user's cart stream: the current cart.
type Cart struct {
	UserID string
	CartNo int // the number of the current (or last) cart, 0 before the first
	Open   bool
	Lines  []Line // in the order they were added
	// Delivery is the open cart's delivery choice, nil until one is made.
	Delivery *Delivery
}

func (c Cart) line(concertID, ticketType string) int {
	return slices.IndexFunc(c.Lines, func(l Line) bool { return l.ConcertID == concertID && l.TicketType == ticketType })
}

// Total returns the sum of the lines.
func (c Cart) Total() (money.Money, error) {
	if len(c.Lines) == 0 {
		return money.Money{}, nil
	}
	total := money.Money{Currency: c.Lines[0].UnitPrice.Currency}
	for _, l := range c.Lines {
		sub, err := l.UnitPrice.Times(l.Quantity)
		if err != nil {
			return money.Money{}, err
		}
		if total, err = total.Add(sub); err != nil {
			return money.Money{}, err
		}
	}
	return total, nil
}

// Decider returns the decider of a user's cart.
func Decider() es.Decider[Cart, Command, Event] {
	return es.Decider[Cart, Command, Event]{Initial: func() Cart { return Cart{} }, Decide: decide, Evolve: evolve}
}

func decide(s Cart, c Command) ([]Event, error) {
	switch c := c.(type) {
	case AddItem:
		if strings.TrimSpace(c.UserID) == "" || c.ConcertID == "" || c.TicketType == "" || c.UnitPrice.Amount <= 0 {
			return nil, ErrInvalidItem
		}
		if err := c.UnitPrice.Validate(); err != nil {
			return nil, err
		}
		var out []Event
		no := s.CartNo
		if !s.Open {
			no++
			out = append(out, CartOpened{UserID: c.UserID, CartNo: no})
			s = Cart{UserID: c.UserID, CartNo: no, Open: true}
		}
		if len(s.Lines) > 0 && s.Lines[0].UnitPrice.Currency != c.UnitPrice.Currency {
			return nil, fmt.Errorf("carts: %w: the cart is in %s, the item in %s", money.ErrCurrencyMismatch, s.Lines[0].UnitPrice.Currency, c.UnitPrice.Currency)
		}
		if i := s.line(c.ConcertID, c.TicketType); i >= 0 {
			q := s.Lines[i].Quantity + c.Quantity
			if c.Quantity < 1 || q > MaxQuantity {
				return nil, fmt.Errorf("%w: %d more on top of %d", ErrInvalidQuantity, c.Quantity, s.Lines[i].Quantity)
			}
			// The line keeps the price it was added at: the price a fan saw.
			return append(out, QuantityChanged{UserID: c.UserID, CartNo: no, ConcertID: c.ConcertID, TicketType: c.TicketType, Quantity: q}), nil
		}
		if c.Quantity < 1 || c.Quantity > MaxQuantity {
			return nil, fmt.Errorf("%w: %d", ErrInvalidQuantity, c.Quantity)
		}
		return append(out, ItemAdded{UserID: c.UserID, CartNo: no, ConcertID: c.ConcertID, ConcertName: c.ConcertName,
			TicketType: c.TicketType, Quantity: c.Quantity, UnitPrice: c.UnitPrice}), nil
	case ChangeQuantity:
		i, err := openLine(s, c.ConcertID, c.TicketType)
		if err != nil {
			return nil, err
		}
		if c.Quantity < 1 || c.Quantity > MaxQuantity {
			return nil, fmt.Errorf("%w: %d", ErrInvalidQuantity, c.Quantity)
		}
		if s.Lines[i].Quantity == c.Quantity {
			return nil, nil
		}
		return []Event{QuantityChanged{UserID: s.UserID, CartNo: s.CartNo, ConcertID: c.ConcertID, TicketType: c.TicketType, Quantity: c.Quantity}}, nil
	case RemoveItem:
		if _, err := openLine(s, c.ConcertID, c.TicketType); err != nil {
			return nil, err
		}
		return []Event{ItemRemoved{UserID: s.UserID, CartNo: s.CartNo, ConcertID: c.ConcertID, TicketType: c.TicketType}}, nil
	case ChooseDelivery:
		if !s.Open {
			return nil, ErrNoOpenCart
		}
		if err := c.Delivery.Validate(); err != nil {
			return nil, err
		}
		return []Event{DeliveryChosen{UserID: s.UserID, CartNo: s.CartNo, Delivery: cloneDelivery(c.Delivery)}}, nil
	case RestoreItems:
		return restore(s, c)
	case ConfirmCart:
		if !s.Open {
			return nil, ErrNoOpenCart
		}
		if len(s.Lines) == 0 {
			return nil, ErrEmptyCart
		}
		if s.Delivery == nil {
			return nil, ErrNoDelivery
		}
		total, err := s.Total()
		if err != nil {
			return nil, err
		}
		return []Event{CartConfirmed{UserID: s.UserID, CartNo: s.CartNo, Lines: slices.Clone(s.Lines), Total: total}}, nil
	case CancelCart:
		if !s.Open {
			return nil, ErrNoOpenCart
		}
		return []Event{CartCancelled{UserID: s.UserID, CartNo: s.CartNo}}, nil
	}
	return nil, fmt.Errorf("carts: unknown command %T", c)
}

func restore(s Cart, c RestoreItems) ([]Event, error) {
	if strings.TrimSpace(c.UserID) == "" || c.OrderID == "" {
		return nil, ErrInvalidItem
	}
	var out []Event
	no := s.CartNo
	if !s.Open {
		no++
		out = append(out, CartOpened{UserID: c.UserID, CartNo: no})
		s = Cart{UserID: c.UserID, CartNo: no, Open: true}
	}
	var lines []Line
	for _, l := range c.Lines {
		if l.ConcertID == "" || l.TicketType == "" || l.Quantity < 1 || l.Quantity > MaxQuantity || l.UnitPrice.Validate() != nil {
			return nil, fmt.Errorf("%w: restored line %+v", ErrInvalidItem, l)
		}
		if len(s.Lines) > 0 && s.Lines[0].UnitPrice.Currency != l.UnitPrice.Currency {
			return nil, fmt.Errorf("carts: %w: the cart is in %s, the order in %s", money.ErrCurrencyMismatch, s.Lines[0].UnitPrice.Currency, l.UnitPrice.Currency)
		}
		if s.line(l.ConcertID, l.TicketType) < 0 {
			lines = append(lines, l)
		}
	}
	var d *Delivery
	if c.Delivery != nil && s.Delivery == nil {
		if err := c.Delivery.Validate(); err != nil {
			return nil, err
		}
		dd := cloneDelivery(*c.Delivery)
		d = &dd
	}
	return append(out, ItemsRestored{UserID: c.UserID, CartNo: no, OrderID: c.OrderID, Lines: lines, Delivery: d}), nil
}

func cloneDelivery(d Delivery) Delivery {
	if d.Address != nil {
		a := *d.Address
		d.Address = &a
	}
	return d
}

func openLine(s Cart, concertID, ticketType string) (int, error) {
	if !s.Open {
		return -1, ErrNoOpenCart
	}
	i := s.line(concertID, ticketType)
	if i < 0 {
		return -1, fmt.Errorf("%w: %s %s", ErrUnknownLine, concertID, ticketType)
	}
	return i, nil
}

func evolve(s Cart, e Event) Cart {
	switch e := e.(type) {
	case CartOpened:
		s = Cart{UserID: e.UserID, CartNo: e.CartNo, Open: true}
	case ItemAdded:
		s.Lines = append(slices.Clone(s.Lines), Line{ConcertID: e.ConcertID, ConcertName: e.ConcertName, TicketType: e.TicketType, Quantity: e.Quantity, UnitPrice: e.UnitPrice})
	case QuantityChanged:
		s.Lines = slices.Clone(s.Lines)
		if i := s.line(e.ConcertID, e.TicketType); i >= 0 {
			s.Lines[i].Quantity = e.Quantity
		}
	case ItemRemoved:
		s.Lines = slices.DeleteFunc(slices.Clone(s.Lines), func(l Line) bool { return l.ConcertID == e.ConcertID && l.TicketType == e.TicketType })
	case DeliveryChosen:
		d := e.Delivery
		s.Delivery = &d
	case ItemsRestored:
		s.Lines = append(slices.Clone(s.Lines), e.Lines...)
		if e.Delivery != nil {
			d := *e.Delivery
			s.Delivery = &d
		}
	case CartConfirmed, CartCancelled:
		s.Open, s.Lines, s.Delivery = false, nil, nil
	}
	return s
}

// Register registers the module's events in reg ("carts.ItemAdded", ...).
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[CartOpened](reg, "carts.CartOpened"),
		es.Register[ItemAdded](reg, "carts.ItemAdded"),
		es.Register[QuantityChanged](reg, "carts.QuantityChanged"),
		es.Register[ItemRemoved](reg, "carts.ItemRemoved"),
		es.Register[CartConfirmed](reg, "carts.CartConfirmed"),
		es.Register[CartCancelled](reg, "carts.CartCancelled"),
		es.Register[DeliveryChosen](reg, "carts.DeliveryChosen"),
		es.Register[ItemsRestored](reg, "carts.ItemsRestored"),
		// The command the orders process sends when an order gets no seats.
		es.Register[RestoreItems](reg, "carts.RestoreItems"),
	)
}
