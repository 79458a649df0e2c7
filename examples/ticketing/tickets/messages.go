// Package tickets is the ticketing example's tickets and delivery module:
// tickets with unique codes, their delivery by e-mail or courier, and their
// validation at the gate.
//
// Other modules talk to it only through the messages in this file: the
// orders process sends IssueTickets and VoidTickets through the outbox,
// and tickets answers with TicketsIssued and DeliveryFailed. Its events
// are its own.
package tickets

import (
	"errors"

	"esgo.dev/es"
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

// IssueTickets asks for one ticket per seat of a paid order and their
// delivery. Issuing is idempotent per order and seat: a repeated request
// issues nothing new. Its message key is the order ID.
type IssueTickets struct {
	OrderID   string `json:"order_id"`
	UserID    string `json:"user_id"`
	ConcertID string `json:"concert_id"`
	// Seats counts the seats by ticket type, as reserved.
	Seats    map[string]int `json:"seats"`
	Delivery Delivery       `json:"delivery"`
}

// VoidTickets voids every ticket of an order (refunded order or cancelled
// concert): a voided ticket is refused at the gate.
type VoidTickets struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// TicketsIssued tells the orders process that an order's tickets exist.
type TicketsIssued struct {
	OrderID   string   `json:"order_id"`
	TicketIDs []string `json:"ticket_ids"`
}

// DeliveryFailed tells the orders process (and through it the buyer) that
// a ticket could not be delivered after the bounded retries.
type DeliveryFailed struct {
	OrderID  string `json:"order_id"`
	TicketID string `json:"ticket_id"`
	Reason   string `json:"reason"`
}

// RegisterMessages registers the module's public messages under their
// names ("tickets.IssueTickets", ...).
func RegisterMessages(reg *es.Registry) error {
	return errors.Join(
		es.Register[IssueTickets](reg, "tickets.IssueTickets"),
		es.Register[VoidTickets](reg, "tickets.VoidTickets"),
		es.Register[TicketsIssued](reg, "tickets.TicketsIssued"),
		es.Register[DeliveryFailed](reg, "tickets.DeliveryFailed"),
	)
}
