package tickets

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"esgo.dev/es"
)

// Business errors of deliveries.
var (
	// ErrInvalidDelivery: the delivery method is unknown, or its e-mail
	// address or postal address is missing or malformed.
	ErrInvalidDelivery = errors.New("tickets: invalid delivery")
	// ErrDeliveryInProgress: a ticket is being sent; a new sending waits
	// until this one is done (sent, delivered or failed).
	ErrDeliveryInProgress = errors.New("tickets: the ticket is being delivered")
	// ErrInvalidDeliveryCommand: a delivery command lacks an ID or a time.
	ErrInvalidDeliveryCommand = errors.New("tickets: invalid delivery command")
	// ErrTooManyResends: the ticket was resent MaxResends times already.
	ErrTooManyResends = errors.New("tickets: the ticket was resent too often")
)

// MaxResends is how often a ticket is sent again after its first sending.
// A resend may go to any address: unbounded, it would make the ticket
// office a mail relay for whoever holds a ticket. A buyer who lost the
// ticket more often than this needs a person, not an endpoint.
const MaxResends = 5

// Validate reports why a delivery cannot be carried out, wrapping
// ErrInvalidDelivery, or nil: an e-mail delivery needs one plain address;
// a courier delivery needs a name, street, city, postal code and a
// two-letter country code.
func (d Delivery) Validate() error {
	switch d.Method {
	case ByEmail:
		a, err := mail.ParseAddress(d.Email)
		if err != nil || a.Address != d.Email || !strings.Contains(d.Email[strings.LastIndex(d.Email, "@")+1:], ".") {
			return fmt.Errorf("%w: %q is not an e-mail address", ErrInvalidDelivery, d.Email)
		}
	case ByCourier:
		a := d.Address
		if a == nil || strings.TrimSpace(a.Name) == "" || strings.TrimSpace(a.Street) == "" || strings.TrimSpace(a.City) == "" ||
			strings.TrimSpace(a.PostalCode) == "" {
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

// DeliveryStream returns the stream of a ticket's delivery.
func DeliveryStream(ticketID string) string { return "delivery-" + ticketID }

// RetryPolicy bounds the retries of a delivery: attempt n that fails is
// retried after MinBackoff doubled n-1 times, at most MaxBackoff, and the
// delivery fails for good after MaxAttempts failed attempts.
type RetryPolicy struct {
	MaxAttempts            int
	MinBackoff, MaxBackoff time.Duration
}

// Backoff returns the wait after failed attempt n (1-based).
func (p RetryPolicy) Backoff(n int) time.Duration {
	b := p.MinBackoff << min(max(n-1, 0), 30)
	if b <= 0 || b > p.MaxBackoff {
		return p.MaxBackoff
	}
	return b
}

func (p RetryPolicy) valid() bool {
	return p.MaxAttempts > 0 && p.MinBackoff > 0 && p.MaxBackoff >= p.MinBackoff
}

// DeliveryStatus is where a ticket's delivery is.
type DeliveryStatus string

// Delivery statuses.
const (
	// StatusPending: requested and not sent yet (retries included).
	StatusPending DeliveryStatus = "pending"
	// StatusEmailed: the mail provider accepted the e-mail.
	StatusEmailed DeliveryStatus = "emailed"
	// StatusShipped: the courier has the parcel.
	StatusShipped DeliveryStatus = "shipped"
	// StatusDelivered: the courier delivered the parcel.
	StatusDelivered DeliveryStatus = "delivered"
	// StatusFailed: the delivery failed for good; the buyer was told.
	StatusFailed DeliveryStatus = "failed"
	// StatusCancelled: the ticket was voided before it was delivered.
	StatusCancelled DeliveryStatus = "cancelled"
)

// InProgress reports whether a delivery with this status is under way.
func (s DeliveryStatus) InProgress() bool { return s == StatusPending || s == StatusShipped }

// DeliveryCommand is a command for a ticket's delivery stream. Apart from
// RequestDelivery and CancelDelivery, they record what a mail provider or
// courier answered: the relay's publisher calls out, then records.
type DeliveryCommand interface{ isDeliveryCommand() }

// RequestDelivery asks for a ticket to be sent: the first sending, or an
// admin's resend. RequestID identifies this sending; it is the
// idempotency key towards the mail provider and the courier.
type RequestDelivery struct {
	TicketID  string
	OrderID   string
	UserID    string
	RequestID string
	Delivery  Delivery
	At        time.Time
}

// RecordSent records that attempt Attempt of request RequestID went
// through: the mail provider accepted the mail, or the courier took the
// parcel (Reference is then the tracking number).
type RecordSent struct {
	RequestID string
	Attempt   int
	Reference string
	At        time.Time
}

// RecordFailure records that attempt Attempt failed. A permanent failure
// (an address no retry will fix) is not retried.
type RecordFailure struct {
	RequestID string
	Attempt   int
	Reason    string
	Permanent bool
	At        time.Time
	Retry     RetryPolicy
}

// RecordParcelDelivered records the courier's word that the parcel
// arrived.
type RecordParcelDelivered struct {
	Tracking string
	At       time.Time
}

// RecordParcelLost records the courier's word that the parcel is lost:
// it counts as a failed attempt, and is retried with a new parcel.
type RecordParcelLost struct {
	Tracking string
	At       time.Time
	Retry    RetryPolicy
}

// CancelDelivery stops a delivery under way (the ticket was voided).
type CancelDelivery struct {
	Reason string
	At     time.Time
}

func (RequestDelivery) isDeliveryCommand()       {}
func (RecordSent) isDeliveryCommand()            {}
func (RecordFailure) isDeliveryCommand()         {}
func (RecordParcelDelivered) isDeliveryCommand() {}
func (RecordParcelLost) isDeliveryCommand()      {}
func (CancelDelivery) isDeliveryCommand()        {}

// DeliveryEvent is an event of a delivery stream.
type DeliveryEvent interface {
	isDeliveryEvent()
	ticket() string
}

// DeliveryRequested: the ticket is to be sent as Delivery says.
type DeliveryRequested struct {
	TicketID  string    `json:"ticket_id"`
	OrderID   string    `json:"order_id"`
	UserID    string    `json:"user_id"`
	RequestID string    `json:"request_id"`
	Delivery  Delivery  `json:"delivery"`
	At        time.Time `json:"at"`
}

// TicketEmailed: the mail provider accepted the ticket's e-mail.
type TicketEmailed struct {
	TicketID  string    `json:"ticket_id"`
	RequestID string    `json:"request_id"`
	Attempt   int       `json:"attempt"`
	Email     string    `json:"email"`
	Reference string    `json:"reference"`
	At        time.Time `json:"at"`
}

// ParcelShipped: the courier took the printed ticket.
type ParcelShipped struct {
	TicketID  string    `json:"ticket_id"`
	RequestID string    `json:"request_id"`
	Attempt   int       `json:"attempt"`
	Tracking  string    `json:"tracking"`
	At        time.Time `json:"at"`
}

// ParcelDelivered: the courier delivered the parcel.
type ParcelDelivered struct {
	TicketID string    `json:"ticket_id"`
	Tracking string    `json:"tracking"`
	At       time.Time `json:"at"`
}

// ParcelLost: the courier lost the parcel. Unless the delivery gives up
// with it, a new parcel goes out at RetryAt.
type ParcelLost struct {
	TicketID  string    `json:"ticket_id"`
	RequestID string    `json:"request_id"`
	Attempt   int       `json:"attempt"`
	Tracking  string    `json:"tracking"`
	RetryAt   time.Time `json:"retry_at"`
	At        time.Time `json:"at"`
}

// DeliveryAttemptFailed: an attempt failed; the next is at RetryAt.
type DeliveryAttemptFailed struct {
	TicketID  string    `json:"ticket_id"`
	RequestID string    `json:"request_id"`
	Attempt   int       `json:"attempt"`
	Reason    string    `json:"reason"`
	RetryAt   time.Time `json:"retry_at"`
	At        time.Time `json:"at"`
}

// DeliveryGaveUp: the delivery failed for good after Attempts attempts;
// the orders process (and through it the buyer) is told.
type DeliveryGaveUp struct {
	TicketID  string    `json:"ticket_id"`
	OrderID   string    `json:"order_id"`
	RequestID string    `json:"request_id"`
	Attempts  int       `json:"attempts"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// DeliveryCancelled: the ticket was voided while it was being delivered.
type DeliveryCancelled struct {
	TicketID  string    `json:"ticket_id"`
	RequestID string    `json:"request_id"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

func (DeliveryRequested) isDeliveryEvent()     {}
func (TicketEmailed) isDeliveryEvent()         {}
func (ParcelShipped) isDeliveryEvent()         {}
func (ParcelDelivered) isDeliveryEvent()       {}
func (ParcelLost) isDeliveryEvent()            {}
func (DeliveryAttemptFailed) isDeliveryEvent() {}
func (DeliveryGaveUp) isDeliveryEvent()        {}
func (DeliveryCancelled) isDeliveryEvent()     {}

func (e DeliveryRequested) ticket() string     { return e.TicketID }
func (e TicketEmailed) ticket() string         { return e.TicketID }
func (e ParcelShipped) ticket() string         { return e.TicketID }
func (e ParcelDelivered) ticket() string       { return e.TicketID }
func (e ParcelLost) ticket() string            { return e.TicketID }
func (e DeliveryAttemptFailed) ticket() string { return e.TicketID }
func (e DeliveryGaveUp) ticket() string        { return e.TicketID }
func (e DeliveryCancelled) ticket() string     { return e.TicketID }

// TicketDelivery is the state of a ticket's delivery: its current (or
// last) sending.
type TicketDelivery struct {
	TicketID  string
	OrderID   string
	UserID    string
	RequestID string
	Delivery  Delivery
	Status    DeliveryStatus
	// Attempt is the number of the current attempt (1-based).
	Attempt int
	// Lost counts the parcels lost in this sending; each new parcel has
	// a new idempotency key.
	Lost      int
	Tracking  string
	Reference string
	LastError string
	// Requests counts the sendings requested: the first and the resends.
	Requests int
}

// Exists reports whether the ticket's delivery was ever requested.
func (d TicketDelivery) Exists() bool { return d.RequestID != "" }

// DispatchKey is the idempotency key of the current attempt towards the
// mail provider or courier: the same for every retry of one e-mail or
// parcel, new for each parcel that replaces a lost one.
func (d TicketDelivery) DispatchKey() string {
	if d.Delivery.Method == ByCourier {
		return fmt.Sprintf("%s/parcel-%d", d.RequestID, d.Lost+1)
	}
	return d.RequestID
}

// DeliveryDecider returns the decider of a ticket's delivery stream.
// Stale results (of an attempt that is not the current one, or a
// sending that was replaced) change nothing, so redelivered messages are
// harmless.
func DeliveryDecider() es.Decider[TicketDelivery, DeliveryCommand, DeliveryEvent] {
	return es.Decider[TicketDelivery, DeliveryCommand, DeliveryEvent]{
		Initial: func() TicketDelivery { return TicketDelivery{} },
		Decide:  decideDelivery,
		Evolve:  evolveDelivery,
	}
}

func decideDelivery(d TicketDelivery, c DeliveryCommand) ([]DeliveryEvent, error) {
	current := func(requestID string, attempt int) bool {
		return d.Status == StatusPending && requestID == d.RequestID && attempt == d.Attempt
	}
	switch c := c.(type) {
	case RequestDelivery:
		switch {
		case c.TicketID == "" || c.OrderID == "" || c.RequestID == "" || c.At.IsZero():
			return nil, fmt.Errorf("%w: a delivery request needs a ticket, an order, a request ID and a time", ErrInvalidDeliveryCommand)
		case c.RequestID == d.RequestID:
			return nil, nil
		case d.Status.InProgress():
			return nil, fmt.Errorf("%w: %s", ErrDeliveryInProgress, d.Status)
		case d.Requests > MaxResends:
			return nil, fmt.Errorf("%w: %d times, at most %d", ErrTooManyResends, d.Requests-1, MaxResends)
		}
		return []DeliveryEvent{DeliveryRequested{TicketID: c.TicketID, OrderID: c.OrderID, UserID: c.UserID,
			RequestID: c.RequestID, Delivery: c.Delivery, At: c.At.UTC()}}, nil
	case RecordSent:
		if !current(c.RequestID, c.Attempt) {
			return nil, nil
		}
		if d.Delivery.Method == ByCourier {
			return []DeliveryEvent{ParcelShipped{TicketID: d.TicketID, RequestID: d.RequestID, Attempt: c.Attempt, Tracking: c.Reference, At: c.At.UTC()}}, nil
		}
		return []DeliveryEvent{TicketEmailed{TicketID: d.TicketID, RequestID: d.RequestID, Attempt: c.Attempt,
			Email: d.Delivery.Email, Reference: c.Reference, At: c.At.UTC()}}, nil
	case RecordFailure:
		if !current(c.RequestID, c.Attempt) {
			return nil, nil
		}
		if !c.Retry.valid() {
			return nil, fmt.Errorf("%w: invalid retry policy %+v", ErrInvalidDeliveryCommand, c.Retry)
		}
		if c.Permanent || c.Attempt >= c.Retry.MaxAttempts {
			return []DeliveryEvent{d.gaveUp(c.Attempt, c.Reason, c.At)}, nil
		}
		return []DeliveryEvent{DeliveryAttemptFailed{TicketID: d.TicketID, RequestID: d.RequestID, Attempt: c.Attempt,
			Reason: c.Reason, RetryAt: c.At.UTC().Add(c.Retry.Backoff(c.Attempt)), At: c.At.UTC()}}, nil
	case RecordParcelDelivered:
		if d.Status != StatusShipped || c.Tracking != d.Tracking {
			return nil, nil
		}
		return []DeliveryEvent{ParcelDelivered{TicketID: d.TicketID, Tracking: c.Tracking, At: c.At.UTC()}}, nil
	case RecordParcelLost:
		if d.Status != StatusShipped || c.Tracking != d.Tracking {
			return nil, nil
		}
		if !c.Retry.valid() {
			return nil, fmt.Errorf("%w: invalid retry policy %+v", ErrInvalidDeliveryCommand, c.Retry)
		}
		lost := ParcelLost{TicketID: d.TicketID, RequestID: d.RequestID, Attempt: d.Attempt, Tracking: c.Tracking, At: c.At.UTC()}
		if d.Attempt >= c.Retry.MaxAttempts {
			return []DeliveryEvent{lost, d.gaveUp(d.Attempt, "parcel "+c.Tracking+" lost", c.At)}, nil
		}
		lost.RetryAt = c.At.UTC().Add(c.Retry.Backoff(d.Attempt))
		return []DeliveryEvent{lost}, nil
	case CancelDelivery:
		if !d.Status.InProgress() {
			return nil, nil
		}
		return []DeliveryEvent{DeliveryCancelled{TicketID: d.TicketID, RequestID: d.RequestID, Reason: c.Reason, At: c.At.UTC()}}, nil
	}
	return nil, fmt.Errorf("tickets: unknown delivery command %T", c)
}

func (d TicketDelivery) gaveUp(attempts int, reason string, at time.Time) DeliveryGaveUp {
	return DeliveryGaveUp{TicketID: d.TicketID, OrderID: d.OrderID, RequestID: d.RequestID, Attempts: attempts, Reason: reason, At: at.UTC()}
}

func evolveDelivery(d TicketDelivery, e DeliveryEvent) TicketDelivery {
	switch e := e.(type) {
	case DeliveryRequested:
		d = TicketDelivery{TicketID: e.TicketID, OrderID: e.OrderID, UserID: e.UserID, RequestID: e.RequestID,
			Delivery: e.Delivery, Status: StatusPending, Attempt: 1, Requests: d.Requests + 1}
	case TicketEmailed:
		d.Status, d.Reference, d.LastError = StatusEmailed, e.Reference, ""
	case ParcelShipped:
		d.Status, d.Tracking, d.LastError = StatusShipped, e.Tracking, ""
	case ParcelDelivered:
		d.Status = StatusDelivered
	case ParcelLost:
		d.Status, d.Tracking, d.LastError = StatusPending, "", "parcel "+e.Tracking+" lost"
		d.Lost++
		d.Attempt++
	case DeliveryAttemptFailed:
		d.LastError = e.Reason
		d.Attempt++
	case DeliveryGaveUp:
		d.Status, d.LastError = StatusFailed, e.Reason
	case DeliveryCancelled:
		d.Status = StatusCancelled
	}
	return d
}

// SendTicket is the delivery's own message: the relay's publisher sends
// attempt Attempt of the ticket's current sending. It is delivered at
// least once; the delivery stream says whether it is still due.
type SendTicket struct {
	TicketID  string `json:"ticket_id"`
	RequestID string `json:"request_id"`
	Attempt   int    `json:"attempt"`
}

// CheckParcel is the delivery's own message: the relay's publisher asks
// the courier where the parcel is.
type CheckParcel struct {
	TicketID string `json:"ticket_id"`
	Tracking string `json:"tracking"`
}

// followUps returns the messages a delivery sends after events: the next
// attempt, a tracking check, or the news of its failure. They are sent
// in the same append as the events, so an attempt is scheduled if and
// only if the failure before it was recorded.
func followUps(events []DeliveryEvent, trackEvery time.Duration) []es.Send {
	var out []es.Send
	for _, e := range events {
		switch e := e.(type) {
		case DeliveryRequested:
			out = append(out, es.Send{Key: e.TicketID, Message: SendTicket{TicketID: e.TicketID, RequestID: e.RequestID, Attempt: 1}})
		case DeliveryAttemptFailed:
			out = append(out, es.Send{Key: e.TicketID, DeliverAt: e.RetryAt,
				Message: SendTicket{TicketID: e.TicketID, RequestID: e.RequestID, Attempt: e.Attempt + 1}})
		case ParcelLost:
			if !e.RetryAt.IsZero() {
				out = append(out, es.Send{Key: e.TicketID, DeliverAt: e.RetryAt,
					Message: SendTicket{TicketID: e.TicketID, RequestID: e.RequestID, Attempt: e.Attempt + 1}})
			}
		case ParcelShipped:
			out = append(out, es.Send{Key: e.TicketID, DeliverAt: e.At.Add(trackEvery),
				Message: CheckParcel{TicketID: e.TicketID, Tracking: e.Tracking}})
		case DeliveryGaveUp:
			out = append(out, es.Send{Key: e.OrderID, Message: DeliveryFailed{OrderID: e.OrderID, TicketID: e.TicketID, Reason: e.Reason}})
		}
	}
	return out
}
