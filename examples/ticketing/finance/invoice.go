package finance

import (
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// Business errors of invoices.
var (
	// ErrInvoiceImmutable: an invoice was issued for the order already,
	// with other content. An issued invoice never changes; a correction is
	// a credit note.
	ErrInvoiceImmutable = errors.New("finance: an issued invoice cannot change; issue a credit note")
	// ErrNoInvoice: the order has no invoice to credit.
	ErrNoInvoice = errors.New("finance: the order has no invoice")
	// ErrCreditExceedsInvoice: the credit notes of an invoice would exceed
	// its total.
	ErrCreditExceedsInvoice = errors.New("finance: credit notes would exceed the invoice total")
	// ErrInvalidInvoice: an invoice lacks its number, order, organizer or
	// lines, or a credit note its amount.
	ErrInvalidInvoice = errors.New("finance: invalid invoice")
	// ErrInvalidBillingInfo: billing information lacks a name or an e-mail.
	ErrInvalidBillingInfo = errors.New("finance: billing information needs a name and an e-mail")
)

// InvoiceStream returns the invoice stream of an order: one invoice per
// paid order, with its credit notes.
func InvoiceStream(orderID string) string { return "invoice-" + orderID }

// BookStream returns the invoice book of an organizer for a year: the
// stream that hands out invoice and credit-note numbers, in order.
func BookStream(organizerID string, year int) string {
	return fmt.Sprintf("invoicebook-%d-%s", year, organizerID)
}

// InvoiceNumber formats the n-th invoice of an organizer's year.
func InvoiceNumber(organizerID string, year, n int) string {
	return fmt.Sprintf("%s/%d/%06d", organizerID, year, n)
}

// CreditNoteNumber formats the n-th credit note of an organizer's year.
func CreditNoteNumber(organizerID string, year, n int) string {
	return fmt.Sprintf("%s/%d/C%06d", organizerID, year, n)
}

// BillingInfo is whom an invoice is made out to.
type BillingInfo struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Email   string `json:"email"`
	// TaxID is the buyer's VAT number, if a company.
	TaxID string `json:"tax_id,omitempty"`
}

// InvoiceEvent is an event of an invoice stream.
type InvoiceEvent interface{ isInvoiceEvent() }

// InvoiceIssued: an invoice was issued for a paid order. It never
// changes afterwards.
type InvoiceIssued struct {
	InvoiceID   string        `json:"invoice_id"`
	Number      string        `json:"number"`
	OrganizerID string        `json:"organizer_id"`
	Year        int           `json:"year"`
	Seq         int           `json:"seq"`
	OrderID     string        `json:"order_id"`
	PaymentID   string        `json:"payment_id"`
	UserID      string        `json:"user_id"`
	ConcertID   string        `json:"concert_id"`
	Buyer       BillingInfo   `json:"buyer"`
	Lines       []InvoiceLine `json:"lines"`
	Total       money.Money   `json:"total"`
	IssuedAt    time.Time     `json:"issued_at"`
}

// CreditNoteIssued: part or all of an invoice was credited back (a
// refund), under a number of its own.
type CreditNoteIssued struct {
	CreditNoteID string      `json:"credit_note_id"`
	Number       string      `json:"number"`
	Seq          int         `json:"seq"`
	InvoiceID    string      `json:"invoice_id"`
	OrderID      string      `json:"order_id"`
	RefundID     string      `json:"refund_id"`
	Amount       money.Money `json:"amount"`
	Reason       string      `json:"reason"`
	IssuedAt     time.Time   `json:"issued_at"`
}

func (InvoiceIssued) isInvoiceEvent()    {}
func (CreditNoteIssued) isInvoiceEvent() {}

// InvoiceCommand is a command for an invoice stream.
type InvoiceCommand interface{ isInvoiceCommand() }

// IssueInvoice issues the invoice of a paid order under the number the
// organizer's book hands out (see [IssueInvoiceFor]).
type IssueInvoice struct {
	InvoiceID, Number string
	OrganizerID       string
	Year, Seq         int
	OrderID           string
	PaymentID         string
	UserID, ConcertID string
	Buyer             BillingInfo
	Lines             []InvoiceLine
	Total             money.Money
	At                time.Time
}

// IssueCreditNote credits Amount of an order's invoice back, for a
// refund.
type IssueCreditNote struct {
	CreditNoteID, Number string
	Seq                  int
	RefundID             string
	Amount               money.Money
	Reason               string
	At                   time.Time
}

func (IssueInvoice) isInvoiceCommand()    {}
func (IssueCreditNote) isInvoiceCommand() {}

// Invoice is the state of an order's invoice.
type Invoice struct {
	Issued    InvoiceIssued
	Credited  money.Money
	Credits   map[string]money.Money // by refund ID
	HasIssued bool
}

// InvoiceDecider returns the decider of invoice streams.
//
// The workshop design has UpdateInvoice and InvoiceUpdated, and numbers
// invoices with random GUIDs. An issued invoice is a legal document: here
// it never changes (a correction is a credit note), and its number comes
// from the organizer's yearly book, one after the other.
func InvoiceDecider() es.Decider[Invoice, InvoiceCommand, InvoiceEvent] {
	return es.Decider[Invoice, InvoiceCommand, InvoiceEvent]{
		Initial: func() Invoice { return Invoice{} },
		Decide:  decideInvoice,
		Evolve: func(s Invoice, e InvoiceEvent) Invoice {
			switch e := e.(type) {
			case InvoiceIssued:
				s = Invoice{Issued: e, HasIssued: true, Credited: money.Money{Currency: e.Total.Currency}, Credits: map[string]money.Money{}}
			case CreditNoteIssued:
				s.Credited.Amount += e.Amount.Amount
				s.Credits[e.RefundID] = e.Amount
			}
			return s
		},
	}
}

func decideInvoice(s Invoice, cmd InvoiceCommand) ([]InvoiceEvent, error) {
	switch c := cmd.(type) {
	case IssueInvoice:
		if s.HasIssued {
			if s.Issued.PaymentID == c.PaymentID && s.Issued.Total == c.Total {
				return nil, nil // issued already, for this very payment
			}
			return nil, fmt.Errorf("%w: order %s has invoice %s", ErrInvoiceImmutable, c.OrderID, s.Issued.Number)
		}
		if c.InvoiceID == "" || c.Number == "" || c.OrderID == "" || c.OrganizerID == "" || c.Seq <= 0 || len(c.Lines) == 0 {
			return nil, fmt.Errorf("%w: invoice ID, number, order, organizer and lines are required", ErrInvalidInvoice)
		}
		total, err := LinesTotal(c.Lines, c.Total.Currency)
		if err != nil {
			return nil, err
		}
		if total != c.Total {
			return nil, fmt.Errorf("%w: lines %s, total %s", ErrLinesDoNotAddUp, total, c.Total)
		}
		return []InvoiceEvent{InvoiceIssued{InvoiceID: c.InvoiceID, Number: c.Number, OrganizerID: c.OrganizerID,
			Year: c.Year, Seq: c.Seq, OrderID: c.OrderID, PaymentID: c.PaymentID, UserID: c.UserID, ConcertID: c.ConcertID,
			Buyer: c.Buyer, Lines: c.Lines, Total: c.Total, IssuedAt: c.At}}, nil
	case IssueCreditNote:
		if !s.HasIssued {
			return nil, ErrNoInvoice
		}
		if c.Amount.Amount <= 0 || c.RefundID == "" || c.CreditNoteID == "" || c.Number == "" {
			return nil, fmt.Errorf("%w: a credit note needs an ID, a number, a refund and a positive amount", ErrInvalidInvoice)
		}
		if err := sameCurrency(c.Amount, s.Issued.Total); err != nil {
			return nil, err
		}
		if prev, ok := s.Credits[c.RefundID]; ok {
			if prev == c.Amount {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: refund %q credited already", ErrRefundIDReused, c.RefundID)
		}
		if s.Credited.Amount+c.Amount.Amount > s.Issued.Total.Amount {
			return nil, fmt.Errorf("%w: total %s, credited %s, asked %s", ErrCreditExceedsInvoice, s.Issued.Total, s.Credited, c.Amount)
		}
		return []InvoiceEvent{CreditNoteIssued{CreditNoteID: c.CreditNoteID, Number: c.Number, Seq: c.Seq,
			InvoiceID: s.Issued.InvoiceID, OrderID: s.Issued.OrderID, RefundID: c.RefundID, Amount: c.Amount,
			Reason: c.Reason, IssuedAt: c.At}}, nil
	}
	return nil, fmt.Errorf("finance: unknown invoice command %T", cmd)
}

// BookEvent is an event of an invoice book.
type BookEvent interface{ isBookEvent() }

// InvoiceNumbered: the book handed out the next invoice number.
type InvoiceNumbered struct {
	Seq       int    `json:"seq"`
	InvoiceID string `json:"invoice_id"`
	OrderID   string `json:"order_id"`
}

// CreditNoteNumbered: the book handed out the next credit-note number.
type CreditNoteNumbered struct {
	Seq          int    `json:"seq"`
	CreditNoteID string `json:"credit_note_id"`
	OrderID      string `json:"order_id"`
}

func (InvoiceNumbered) isBookEvent()    {}
func (CreditNoteNumbered) isBookEvent() {}

// Book is the state of an organizer's invoice book for a year: the last
// numbers handed out.
type Book struct {
	LastInvoice, LastCreditNote int
}

// BookDecider returns the decider of invoice books. It decides nothing on
// its own (it has no commands): issuing decisions load it, take the next
// number and record its event in the same atomic append as the invoice
// (see [IssueInvoiceFor]), so numbers have neither gaps nor duplicates
// whatever runs concurrently: two decisions that took the same number
// conflict on the book's version, and the loser decides again.
func BookDecider() es.Decider[Book, struct{}, BookEvent] {
	return es.Decider[Book, struct{}, BookEvent]{
		Initial:         func() Book { return Book{} },
		SnapshotName:    "invoice-book",
		SnapshotVersion: 1,
		Decide:          func(Book, struct{}) ([]BookEvent, error) { return nil, nil },
		Evolve: func(b Book, e BookEvent) Book {
			switch e := e.(type) {
			case InvoiceNumbered:
				b.LastInvoice = e.Seq
			case CreditNoteNumbered:
				b.LastCreditNote = e.Seq
			}
			return b
		},
	}
}

// BillingStream returns the stream of a user's financial information.
func BillingStream(userID string) string { return "billing-" + userID }

// BillingEvent is an event of a billing stream.
type BillingEvent interface{ isBillingEvent() }

// BillingInfoRecorded: a user's billing details (and saved payment
// method) were set. Invoices issued afterwards use them; issued ones keep
// what they were issued with.
type BillingInfoRecorded struct {
	UserID string      `json:"user_id"`
	Info   BillingInfo `json:"info"`
	// PaymentMethod is the gateway's reference to the user's saved
	// payment method (a Stripe PaymentMethod ID), if any.
	PaymentMethod string `json:"payment_method,omitempty"`
}

func (BillingInfoRecorded) isBillingEvent() {}

// SetBillingInfo sets a user's financial information (the workshop
// design's CreateUserFinancialInfo and UpdateUserFinancialInfo, which
// differ in nothing but whether a stream exists).
type SetBillingInfo struct {
	UserID        string
	Info          BillingInfo
	PaymentMethod string
}

// Billing is a user's financial information.
type Billing struct {
	Info          BillingInfo
	PaymentMethod string
}

// BillingDecider returns the decider of billing streams.
func BillingDecider() es.Decider[Billing, SetBillingInfo, BillingEvent] {
	return es.Decider[Billing, SetBillingInfo, BillingEvent]{
		Initial: func() Billing { return Billing{} },
		Decide: func(b Billing, c SetBillingInfo) ([]BillingEvent, error) {
			if c.UserID == "" || c.Info.Name == "" || c.Info.Email == "" {
				return nil, ErrInvalidBillingInfo
			}
			if b.Info == c.Info && b.PaymentMethod == c.PaymentMethod {
				return nil, nil
			}
			//lint:ignore S1016 a command is not a converted event: their fields must stay free to differ
			return []BillingEvent{BillingInfoRecorded{UserID: c.UserID, Info: c.Info, PaymentMethod: c.PaymentMethod}}, nil
		},
		Evolve: func(b Billing, e BillingEvent) Billing {
			if e, ok := e.(BillingInfoRecorded); ok {
				b.Info, b.PaymentMethod = e.Info, e.PaymentMethod
			}
			return b
		},
	}
}
