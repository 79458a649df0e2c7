// Package tickets is the ticketing example's tickets and delivery module:
// tickets with unique codes, their delivery by e-mail or courier, and their
// validation at the gate.
//
// Other modules talk to it only through the messages in this file: the
// orders process sends IssueTickets and VoidTickets through the outbox,
// and tickets answers with TicketsIssued and DeliveryFailed. Its events
// are its own.
//
// The workshop design gets several things wrong, and this package does
// otherwise:
//
//   - Its tickets have no code, and its deliveries are keyed
//     "{order}-{type}-{index}". Here each ticket has a derived ID (so that
//     issuing is idempotent per order and seat: [TicketID]) and a secret
//     code of at least 128 random bits ([NewCode]) that the gate checks;
//     the QR code holds the code.
//   - It sends e-mail from a projection handler, swallowing failures, with
//     an idempotency key Mailgun does not have. Here nothing leaves the
//     process inside a command: a decision records DeliveryRequested and
//     enqueues a SendTicket in one append, and the relay's publisher calls
//     the [Mailer] or [Courier] and records the outcome ([Service]).
//     Failures are retried with backoff, bounded, and end in
//     DeliveryFailed; package mailer says what "not twice" can mean.
//   - It records a failed validation as an event, and checks "validated
//     once" on a state loaded without concurrency control. Here an
//     admission is appended with the ticket's version as the expectation,
//     so two gates cannot both admit a ticket, and a refusal is an error
//     that changes nothing ([TicketDecider]).
//   - A ticket is resent at most [MaxResends] times, to whatever address:
//     the resend is no mail relay.
//   - Its "compensate ticket creation" is left undefined. Here a lost
//     parcel gives the ticket a new code before a new parcel goes out, so
//     the lost paper admits nobody.
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
