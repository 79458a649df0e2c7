package tickets

import (
	"context"
	"errors"
	"fmt"
	"html"
	"strings"
	"time"
)

// Mail is an e-mail with a ticket.
type Mail struct {
	// ID identifies this e-mail for good: every retry and redelivery of
	// one sending has the same ID. Mailers use it as the idempotency key
	// where the provider has one, and as the Message-ID.
	ID      string
	To      string
	Subject string
	Text    string
	HTML    string
	// Attachments are sent as files; an HTML body refers to one by its
	// name as "cid:NAME".
	Attachments []Attachment
}

// Attachment is a file attached to a Mail.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Mailer sends e-mails. Send returns the provider's reference for the
// mail. It is called from the relay's publisher, at least once per mail:
// a mailer should make a second Send of the same Mail.ID harmless where
// its provider allows (see the package mailer for what each can do).
// A *PermanentError means that no retry will succeed.
type Mailer interface {
	Send(ctx context.Context, m Mail) (ref string, err error)
}

// MailerFunc adapts a function to [Mailer].
type MailerFunc func(ctx context.Context, m Mail) (string, error)

// Send calls f.
func (f MailerFunc) Send(ctx context.Context, m Mail) (string, error) { return f(ctx, m) }

// Shipment is a printed ticket for a courier to deliver.
type Shipment struct {
	// Key is the idempotency key: a courier given the same key twice
	// ships one parcel and returns its tracking number again.
	Key      string
	TicketID string
	To       PostalAddress
	// Code is printed on the ticket, with its QR code.
	Code string
}

// ParcelState is what a courier says about a parcel.
type ParcelState string

// Parcel states.
const (
	ParcelInTransit ParcelState = "in_transit"
	ParcelArrived   ParcelState = "delivered"
	ParcelMissing   ParcelState = "lost"
)

// Tracking is a courier's tracking report.
type Tracking struct {
	Number string
	State  ParcelState
	At     time.Time
}

// Courier ships printed tickets and tracks them. Like a Mailer it is
// called from the relay's publisher, at least once per shipment key.
type Courier interface {
	Ship(ctx context.Context, s Shipment) (tracking string, err error)
	Track(ctx context.Context, tracking string) (Tracking, error)
}

// PermanentError is a failure that no retry will fix (the provider
// refused the address, say): the delivery fails at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// permanent reports whether err is a *PermanentError.
func permanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// TicketMail returns the e-mail that carries a ticket: its code in the
// text, and its QR code attached and shown in the HTML body.
func TicketMail(id, to string, t Ticket) (Mail, error) {
	png, err := QRCode(t.Code)
	if err != nil {
		return Mail{}, fmt.Errorf("tickets: QR code of %s: %w", t.ID, err)
	}
	qrName := "ticket-" + t.ID + ".png"
	var text strings.Builder
	fmt.Fprintf(&text, "Your ticket for concert %s (%s, seat %s).\n\n", t.ConcertID, t.TicketType, t.ID)
	fmt.Fprintf(&text, "Ticket code: %s\n\n", t.Code)
	fmt.Fprintf(&text, "Show the attached QR code at the gate. It admits one person, once.\nOrder: %s\n", t.OrderID)
	html := fmt.Sprintf(`<p>Your ticket for concert <b>%s</b> (%s).</p><p><img src="cid:%s" alt="ticket QR code" width="320" height="320"></p>`+
		`<p>Ticket code: <code>%s</code></p><p>It admits one person, once.</p>`,
		html.EscapeString(t.ConcertID), html.EscapeString(t.TicketType), qrName, html.EscapeString(t.Code))
	return Mail{
		ID: id, To: to,
		Subject:     "Your ticket for " + t.ConcertID,
		Text:        text.String(),
		HTML:        html,
		Attachments: []Attachment{{Name: qrName, ContentType: "image/png", Data: png}},
	}, nil
}
