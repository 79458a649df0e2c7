package tickets

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"esgo.dev/es"
	qrcode "github.com/skip2/go-qrcode"
)

// Business errors of tickets.
var (
	// ErrUnknownTicket: no ticket has that ID (or the code names none).
	ErrUnknownTicket = errors.New("tickets: unknown ticket")
	// ErrInvalidCode: the code is malformed, or not the ticket's current
	// code (a forged code, or the code of a lost parcel, replaced since).
	ErrInvalidCode = errors.New("tickets: invalid ticket code")
	// ErrAlreadyUsed: the ticket was admitted already. The error returned
	// is an *AlreadyUsedError that says where and when.
	ErrAlreadyUsed = errors.New("tickets: ticket already used")
	// ErrTicketVoided: the ticket was voided (refunded order or cancelled
	// concert) and admits nobody.
	ErrTicketVoided = errors.New("tickets: ticket voided")
	// ErrWrongConcert: the ticket is for another concert than the gate's.
	ErrWrongConcert = errors.New("tickets: ticket is for another concert")
	// ErrInvalidTicket: a command lacks an ID, a gate, a time or a valid
	// code.
	ErrInvalidTicket = errors.New("tickets: invalid ticket command")
)

// AlreadyUsedError is the refusal of a ticket admitted before: it tells
// the gate where and when, so staff can tell a copied ticket from a
// double scan.
type AlreadyUsedError struct {
	TicketID string
	Gate     string
	At       time.Time
}

func (e *AlreadyUsedError) Error() string {
	return fmt.Sprintf("tickets: ticket %s already used at gate %s, at %s", e.TicketID, e.Gate, e.At.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrAlreadyUsed) hold.
func (e *AlreadyUsedError) Is(target error) bool { return target == ErrAlreadyUsed }

// TicketStream returns the stream of a ticket.
func TicketStream(ticketID string) string { return "ticket-" + ticketID }

// TicketID returns the ID of the n-th (1-based) seat of a ticket type in
// an order. It is derived, not drawn, so that a repeated IssueTickets
// finds the tickets it issued before and issues none twice. The ID is not
// secret: the code is.
func TicketID(orderID, ticketType string, n int) string {
	return es.DeriveID("tickets:"+orderID+"/"+ticketType, n)
}

// NewCode returns a fresh code for a ticket: the ticket's ID, a dot, and
// a secret of at least 128 random bits from crypto/rand (base32), so that
// codes cannot be enumerated or guessed from one another. The ID in the
// code lets a gate find the ticket without a lookup table.
func NewCode(ticketID string) string {
	return ticketID + "." + rand.Text()
}

// CodeTicketID returns the ticket ID a code names, or ErrInvalidCode.
func CodeTicketID(code string) (string, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(code), ".")
	if !ok || !es.ValidID(id) || len(secret) < 26 {
		return "", ErrInvalidCode
	}
	return id, nil
}

// QRCode returns a PNG image of a QR code holding code, for a phone to
// show or a printer to print.
func QRCode(code string) ([]byte, error) {
	return qrcode.Encode(code, qrcode.Medium, 320)
}

// TicketCommand is a command for a ticket's stream.
type TicketCommand interface{ isTicketCommand() }

// IssueTicket issues one ticket for one seat of a paid order. Code comes
// from NewCode: the decider is pure, so the randomness comes in the
// command.
type IssueTicket struct {
	TicketID   string    `json:"ticket_id"`
	OrderID    string    `json:"order_id"`
	UserID     string    `json:"user_id"`
	ConcertID  string    `json:"concert_id"`
	TicketType string    `json:"ticket_type"`
	Seat       int       `json:"seat"`
	Code       string    `json:"code"`
	At         time.Time `json:"at"`
}

// AdmitTicket is a scan at a gate of the concert ConcertID.
type AdmitTicket struct {
	TicketID  string    `json:"ticket_id"`
	Code      string    `json:"code"`
	ConcertID string    `json:"concert_id"`
	Gate      string    `json:"gate"`
	At        time.Time `json:"at"`
}

// VoidTicket voids a ticket: it admits nobody from then on.
type VoidTicket struct {
	TicketID string    `json:"ticket_id"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// ReplaceCode gives a ticket a new code, so that the old one (printed on
// a lost parcel, say) admits nobody.
type ReplaceCode struct {
	TicketID string    `json:"ticket_id"`
	Code     string    `json:"code"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

func (IssueTicket) isTicketCommand() {}
func (AdmitTicket) isTicketCommand() {}
func (VoidTicket) isTicketCommand()  {}
func (ReplaceCode) isTicketCommand() {}

// TicketEvent is an event of a ticket's stream.
type TicketEvent interface{ isTicketEvent() }

// TicketIssued: a ticket exists for one seat of an order.
type TicketIssued struct {
	TicketID   string    `json:"ticket_id"`
	OrderID    string    `json:"order_id"`
	UserID     string    `json:"user_id"`
	ConcertID  string    `json:"concert_id"`
	TicketType string    `json:"ticket_type"`
	Seat       int       `json:"seat"`
	Code       string    `json:"code"`
	IssuedAt   time.Time `json:"issued_at"`
}

// TicketAdmitted: the ticket let its holder in at Gate.
type TicketAdmitted struct {
	TicketID  string    `json:"ticket_id"`
	ConcertID string    `json:"concert_id"`
	Gate      string    `json:"gate"`
	At        time.Time `json:"at"`
}

// TicketVoided: the ticket admits nobody any more.
type TicketVoided struct {
	TicketID  string    `json:"ticket_id"`
	OrderID   string    `json:"order_id"`
	ConcertID string    `json:"concert_id"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
}

// TicketCodeReplaced: the ticket has a new code; the old one admits
// nobody.
type TicketCodeReplaced struct {
	TicketID string    `json:"ticket_id"`
	Code     string    `json:"code"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

func (TicketIssued) isTicketEvent()       {}
func (TicketAdmitted) isTicketEvent()     {}
func (TicketVoided) isTicketEvent()       {}
func (TicketCodeReplaced) isTicketEvent() {}

// Ticket is the state of a ticket.
type Ticket struct {
	ID         string
	OrderID    string
	UserID     string
	ConcertID  string
	TicketType string
	Code       string
	IssuedAt   time.Time
	// Admitted is set once the ticket let someone in, at Gate, at
	// AdmittedAt.
	Admitted   bool
	Gate       string
	AdmittedAt time.Time
	Voided     bool
	VoidReason string
}

// Exists reports whether the ticket was issued.
func (t Ticket) Exists() bool { return t.ID != "" }

// TicketDecider returns the decider of a ticket's stream.
//
// The workshop design records a failed validation as an event
// (TicketValidationFailed) in the ticket's stream: anyone with a scanner
// could then grow any ticket's stream, and a refused scan would contend
// with the admission it lost to. Here a refusal is an answer, not a fact
// about the ticket: it is returned as an error and changes nothing.
func TicketDecider() es.Decider[Ticket, TicketCommand, TicketEvent] {
	return es.Decider[Ticket, TicketCommand, TicketEvent]{
		Initial: func() Ticket { return Ticket{} },
		Decide:  decideTicket,
		Evolve:  evolveTicket,
	}
}

func decideTicket(t Ticket, c TicketCommand) ([]TicketEvent, error) {
	switch c := c.(type) {
	case IssueTicket:
		switch {
		case c.TicketID == "" || c.OrderID == "" || c.UserID == "" || c.ConcertID == "" || c.TicketType == "" || c.Seat < 1 || c.At.IsZero():
			return nil, fmt.Errorf("%w: issue needs ticket, order, user, concert, ticket type, seat and time", ErrInvalidTicket)
		case !codeOf(c.Code, c.TicketID):
			return nil, fmt.Errorf("%w: code does not name ticket %s", ErrInvalidTicket, c.TicketID)
		case t.Exists():
			return nil, nil // issuing is idempotent: the first code stays
		}
		return []TicketEvent{TicketIssued{TicketID: c.TicketID, OrderID: c.OrderID, UserID: c.UserID, ConcertID: c.ConcertID,
			TicketType: c.TicketType, Seat: c.Seat, Code: c.Code, IssuedAt: c.At.UTC()}}, nil
	case AdmitTicket:
		if c.Gate == "" || c.At.IsZero() {
			return nil, fmt.Errorf("%w: a scan needs a gate and a time", ErrInvalidTicket)
		}
		if !t.Exists() {
			return nil, ErrUnknownTicket
		}
		// The code first: whoever lacks it learns nothing about the ticket.
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(c.Code)), []byte(t.Code)) != 1 {
			return nil, ErrInvalidCode
		}
		switch {
		case t.Voided:
			return nil, fmt.Errorf("%w: %s", ErrTicketVoided, t.VoidReason)
		case t.Admitted:
			return nil, &AlreadyUsedError{TicketID: t.ID, Gate: t.Gate, At: t.AdmittedAt}
		case c.ConcertID != t.ConcertID:
			return nil, fmt.Errorf("%w: it is for concert %s", ErrWrongConcert, t.ConcertID)
		}
		return []TicketEvent{TicketAdmitted{TicketID: t.ID, ConcertID: t.ConcertID, Gate: c.Gate, At: c.At.UTC()}}, nil
	case VoidTicket:
		switch {
		case !t.Exists():
			return nil, ErrUnknownTicket
		case t.Voided:
			return nil, nil
		}
		return []TicketEvent{TicketVoided{TicketID: t.ID, OrderID: t.OrderID, ConcertID: t.ConcertID, Reason: c.Reason, At: c.At.UTC()}}, nil
	case ReplaceCode:
		switch {
		case !t.Exists():
			return nil, ErrUnknownTicket
		case !codeOf(c.Code, t.ID):
			return nil, fmt.Errorf("%w: code does not name ticket %s", ErrInvalidTicket, t.ID)
		case t.Voided:
			return nil, fmt.Errorf("%w: %s", ErrTicketVoided, t.VoidReason)
		case t.Admitted:
			return nil, &AlreadyUsedError{TicketID: t.ID, Gate: t.Gate, At: t.AdmittedAt}
		}
		return []TicketEvent{TicketCodeReplaced{TicketID: t.ID, Code: c.Code, Reason: c.Reason, At: c.At.UTC()}}, nil
	}
	return nil, fmt.Errorf("tickets: unknown ticket command %T", c)
}

// codeOf reports whether code is a well-formed code of ticket id.
func codeOf(code, id string) bool {
	got, err := CodeTicketID(code)
	return err == nil && got == id
}

func evolveTicket(t Ticket, e TicketEvent) Ticket {
	switch e := e.(type) {
	case TicketIssued:
		t = Ticket{ID: e.TicketID, OrderID: e.OrderID, UserID: e.UserID, ConcertID: e.ConcertID,
			TicketType: e.TicketType, Code: e.Code, IssuedAt: e.IssuedAt}
	case TicketAdmitted:
		t.Admitted, t.Gate, t.AdmittedAt = true, e.Gate, e.At
	case TicketVoided:
		t.Voided, t.VoidReason = true, e.Reason
	case TicketCodeReplaced:
		t.Code = e.Code
	}
	return t
}
