// Package carts is the ticketing example's shopping carts: one open cart
// per user, in the stream "cart-<user ID>", which cycles open → confirmed
// or cancelled → a new cart opens with the next item added.
//
// Corrections to the workshop design this comes from: its read models show
// a price and a concert name that its events do not carry. Here ItemAdded
// carries a snapshot of both, taken from the concert when the item is
// added, with the price's currency; a cart holds one currency only.
// Quantities are 1 to 10 per line (adding to an existing line increases
// it, within the limit), and removing a line that is not in the cart is an
// error rather than silently ignored.
package carts

import (
	"errors"
	"fmt"
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
)

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

// ConfirmCart closes the cart for checkout.
type ConfirmCart struct{ UserID string }

// CancelCart throws the cart away.
type CancelCart struct{ UserID string }

func (AddItem) isCommand()        {}
func (ChangeQuantity) isCommand() {}
func (RemoveItem) isCommand()     {}
func (ConfirmCart) isCommand()    {}
func (CancelCart) isCommand()     {}

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
	case ConfirmCart:
		if !s.Open {
			return nil, ErrNoOpenCart
		}
		if len(s.Lines) == 0 {
			return nil, ErrEmptyCart
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
	case CartConfirmed, CartCancelled:
		s.Open, s.Lines = false, nil
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
	)
}
