package web

import (
	"fmt"
	"net/http"
	"time"

	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/users"
)

// Payments and invoices are their buyer's (404 to anyone else); revenue
// is the viewing organizer's own.

type paymentOut struct {
	ID            string                `json:"id"`
	OrderID       string                `json:"orderId"`
	Amount        money.Money           `json:"amount"`
	Refunded      money.Money           `json:"refunded"`
	Status        finance.PaymentStatus `json:"status"`
	RequestedAt   time.Time             `json:"requestedAt"`
	ConcertID     string                `json:"concertId,omitempty"`
	FailureReason string                `json:"failureReason,omitempty"`
	SettledAt     *time.Time            `json:"settledAt,omitempty"`
	Refunds       []refundOut           `json:"refunds,omitempty"`
}

type refundOut struct {
	ID     string      `json:"id"`
	Amount money.Money `json:"amount"`
	Reason string      `json:"reason"`
	Status string      `json:"status"`
}

func (s *Server) listPayments(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	list, err := finance.UserPayments(r.Context(), s.cfg.DB.DB(), v.ID)
	if err != nil {
		return err
	}
	out := []paymentOut{}
	for _, p := range list {
		out = append(out, paymentOut{ID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount, Refunded: p.Refunded, Status: p.Status,
			RequestedAt: p.RequestedAt})
	}
	return ok(w, out)
}

func (s *Server) getPayment(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	id, err := uuidParam(r, "id")
	if err != nil {
		return err
	}
	p, err := finance.PaymentDetailsOf(r.Context(), s.cfg.DB.DB(), id)
	if err != nil {
		return noRows(err, "payment "+id)
	}
	if p.UserID != v.ID {
		return fmt.Errorf("%w: payment %s", errNotFound, id)
	}
	out := paymentOut{ID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount, Refunded: p.Refunded, Status: p.Status,
		RequestedAt: p.RequestedAt, ConcertID: p.ConcertID, FailureReason: p.FailureReason}
	if !p.SettledAt.IsZero() {
		out.SettledAt = &p.SettledAt
	}
	for _, x := range p.Refunds {
		out.Refunds = append(out.Refunds, refundOut{ID: x.RefundID, Amount: x.Amount, Reason: x.Reason, Status: x.Status})
	}
	return ok(w, out)
}

type invoiceOut struct {
	ID          string           `json:"id"`
	Number      string           `json:"number"`
	OrderID     string           `json:"orderId"`
	ConcertID   string           `json:"concertId"`
	Total       money.Money      `json:"total"`
	Credited    *money.Money     `json:"credited,omitempty"`
	IssuedAt    time.Time        `json:"issuedAt"`
	Buyer       *billingIO       `json:"buyer,omitempty"`
	Lines       []invoiceLineOut `json:"lines,omitempty"`
	CreditNotes []creditNoteOut  `json:"creditNotes,omitempty"`
}

type invoiceLineOut struct {
	Description string      `json:"description"`
	Quantity    int         `json:"quantity"`
	UnitPrice   money.Money `json:"unitPrice"`
}

type creditNoteOut struct {
	ID       string      `json:"id"`
	Number   string      `json:"number"`
	Reason   string      `json:"reason"`
	Amount   money.Money `json:"amount"`
	IssuedAt time.Time   `json:"issuedAt"`
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	list, err := finance.UserInvoices(r.Context(), s.cfg.DB.DB(), v.ID)
	if err != nil {
		return err
	}
	out := []invoiceOut{}
	for _, i := range list {
		credited := i.Credited
		out = append(out, invoiceOut{ID: i.InvoiceID, Number: i.Number, OrderID: i.OrderID, ConcertID: i.ConcertID, Total: i.Total,
			Credited: &credited, IssuedAt: i.IssuedAt})
	}
	return ok(w, out)
}

// getInvoice answers the invoice of the viewer's order.
func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	orderID, err := uuidParam(r, "orderId")
	if err != nil {
		return err
	}
	d, err := finance.InvoiceDetailsOf(r.Context(), s.cfg.DB.DB(), orderID)
	if err != nil {
		return noRows(err, "invoice of order "+orderID)
	}
	if d.UserID != v.ID {
		return fmt.Errorf("%w: invoice of order %s", errNotFound, orderID)
	}
	b := billingIO{Name: d.Buyer.Name, Address: d.Buyer.Address, Email: d.Buyer.Email, TaxID: d.Buyer.TaxID}
	out := invoiceOut{ID: d.InvoiceID, Number: d.Number, OrderID: d.OrderID, ConcertID: d.ConcertID, Total: d.Total,
		IssuedAt: d.IssuedAt, Buyer: &b}
	for _, l := range d.Lines {
		out.Lines = append(out.Lines, invoiceLineOut{Description: l.Description, Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	for _, c := range d.CreditNotes {
		out.CreditNotes = append(out.CreditNotes, creditNoteOut{ID: c.CreditNoteID, Number: c.Number, Reason: c.Reason, Amount: c.Amount,
			IssuedAt: c.IssuedAt})
	}
	return ok(w, out)
}

// billingIO is a buyer's billing details, in and out.
type billingIO struct {
	Name          string `json:"name"`
	Address       string `json:"address"`
	Email         string `json:"email"`
	TaxID         string `json:"taxId,omitempty"`
	PaymentMethod string `json:"paymentMethod,omitempty"`
}

func (s *Server) setBilling(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := customer(v); err != nil {
		return err
	}
	in, err := decode[billingIO](w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		return err
	}
	cmdID, err := s.commandID(r, "billing")
	if err != nil {
		return err
	}
	err = s.cfg.App.SetBillingInfo(r.Context(), cmdID, finance.SetBillingInfo{UserID: v.ID, PaymentMethod: in.PaymentMethod,
		Info: finance.BillingInfo{Name: in.Name, Address: in.Address, Email: in.Email, TaxID: in.TaxID}})
	if err != nil {
		return err
	}
	return noContent(w)
}

func (s *Server) organizerRevenue(w http.ResponseWriter, r *http.Request, v Viewer) error {
	if err := require(v, users.Organizer); err != nil {
		return err
	}
	list, err := finance.OrganizerRevenue(r.Context(), s.cfg.DB.DB(), v.ID)
	if err != nil {
		return err
	}
	out := []revenueOut{}
	for _, x := range list {
		out = append(out, revenueFrom(x))
	}
	return ok(w, out)
}
