package orders

import (
	"time"

	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/tickets"
)

// The messages of the orders module. Checkout sends PlaceOrder; the buyer
// sends CancelOrder; the concerts' cancellation sends ConcertCancelled.
// The process's seat step speaks ReserveSeats, ConfirmSeats and
// ReleaseSeats, answered by SeatsHeld, SeatsUnavailable, SeatsConfirmed
// and SeatsLapsed: package app answers them with the reservations module's
// inventory, which knows nothing of orders. Payments and tickets go through
// the finance and tickets modules' own messages.

// Line is one line of an order: Quantity tickets of a type at UnitPrice,
// the price the buyer saw in the cart.
type Line struct {
	TicketType  string      `json:"ticket_type"`
	ConcertName string      `json:"concert_name"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unit_price"`
}

// PlaceOrder asks for an order of one concert's tickets, made from a
// confirmed cart. Checkout sends one per concert in the cart, in the same
// append as the cart's confirmation; its message key is the order ID.
type PlaceOrder struct {
	OrderID     string           `json:"order_id"`
	UserID      string           `json:"user_id"`
	CartNo      int              `json:"cart_no"`
	ConcertID   string           `json:"concert_id"`
	OrganizerID string           `json:"organizer_id"`
	Lines       []Line           `json:"lines"`
	Delivery    tickets.Delivery `json:"delivery"`
}

// CancelOrder cancels an order: the buyer's, before it is paid, or, with
// ConcertCancelled, the organizer's, at any time (then a paid order is
// refunded and its tickets voided).
type CancelOrder struct {
	OrderID          string `json:"order_id"`
	Reason           string `json:"reason"`
	ConcertCancelled bool   `json:"concert_cancelled,omitempty"`
}

// ConcertCancelled tells the orders module that a concert will not take
// place: every order of it is cancelled, paid ones refunded. Package app
// sends it in the same append as the concert's cancellation.
type ConcertCancelled struct {
	ConcertID string `json:"concert_id"`
	Reason    string `json:"reason"`
}

// ReserveSeats asks the inventory of a concert to hold seats for an order.
type ReserveSeats struct {
	OrderID       string         `json:"order_id"`
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	UserID        string         `json:"user_id"`
	Seats         map[string]int `json:"seats"`
}

// ConfirmSeats asks the inventory to keep an order's held seats for good.
type ConfirmSeats struct {
	OrderID       string `json:"order_id"`
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
}

// ReleaseSeats asks the inventory to free an order's held seats. Releasing
// seats that are free already changes nothing.
type ReleaseSeats struct {
	OrderID       string `json:"order_id"`
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
}

// SeatsHeld answers ReserveSeats: the seats are held until ExpiresAt.
type SeatsHeld struct {
	OrderID       string    `json:"order_id"`
	ReservationID string    `json:"reservation_id"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// SeatsUnavailable answers ReserveSeats: no seats were held, for Reason.
type SeatsUnavailable struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
	Reason        string `json:"reason"`
}

// SeatsConfirmed answers ConfirmSeats: the seats are the order's.
type SeatsConfirmed struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
}

// SeatsLapsed answers ConfirmSeats: the hold had run out and the seats
// were released before the confirmation came.
type SeatsLapsed struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
}

// PaymentDue is the order process's deadline: the payment must be
// captured by the end of the seats' hold.
type PaymentDue struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
}
