// Package standin answers the finance and tickets modules' messages
// (RequestPayment, RefundPayment, IssueTickets, VoidTickets) exactly as
// their contracts say, until those modules are wired into package app. It
// stands in for them in tests and in the demo: it charges nothing and
// issues nothing real, but it keeps a ledger of what it "charged",
// "refunded" and "issued" in the event store, so that tests can check the
// money from the store.
//
// Each answer is written with the stand-in's own event in one
// AppendEnqueue, and each request is idempotent by its ID (payment ID,
// refund ID, order ID), as the real modules are: a redelivered request
// changes nothing and answers nothing twice.
package standin

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/tickets"
)

// ErrNotCharged: a refund or completion names a payment that was not
// charged (or not left pending).
var ErrNotCharged = errors.New("standin: no such charged payment")

// PaymentStream returns the ledger stream of a payment.
func PaymentStream(paymentID string) string { return "standinpay-" + paymentID }

// TicketStream returns the stream of an order's stand-in tickets.
func TicketStream(orderID string) string { return "standintickets-" + orderID }

// The stand-in's events.
type (
	// Charged: the payment was captured.
	Charged struct {
		PaymentID string      `json:"payment_id"`
		OrderID   string      `json:"order_id"`
		Amount    money.Money `json:"amount"`
	}
	// Declined: the payment was turned down.
	Declined struct {
		PaymentID string `json:"payment_id"`
		OrderID   string `json:"order_id"`
		Reason    string `json:"reason"`
	}
	// Pending: the payment waits for Complete (a bank that answers late).
	Pending struct {
		PaymentID string      `json:"payment_id"`
		OrderID   string      `json:"order_id"`
		Amount    money.Money `json:"amount"`
	}
	// Refunded: money went back.
	Refunded struct {
		PaymentID string      `json:"payment_id"`
		RefundID  string      `json:"refund_id"`
		OrderID   string      `json:"order_id"`
		Amount    money.Money `json:"amount"`
	}
	// Issued: an order's tickets were issued.
	Issued struct {
		OrderID   string           `json:"order_id"`
		TicketIDs []string         `json:"ticket_ids"`
		Delivery  tickets.Delivery `json:"delivery"`
	}
	// Voided: an order's tickets were voided.
	Voided struct {
		OrderID string `json:"order_id"`
		Reason  string `json:"reason"`
	}
)

// Register registers the stand-in's events in reg.
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[Charged](reg, "standin.Charged"),
		es.Register[Declined](reg, "standin.Declined"),
		es.Register[Pending](reg, "standin.Pending"),
		es.Register[Refunded](reg, "standin.Refunded"),
		es.Register[Issued](reg, "standin.Issued"),
		es.Register[Voided](reg, "standin.Voided"),
	)
}

// Config says how the stand-in answers payments. The zero value charges
// every payment at once.
type Config struct {
	// Decline, when set, says whether to decline a payment, and why.
	Decline func(finance.RequestPayment) (reason string, declined bool)
	// Pending, when set, says whether to leave a payment pending until
	// Complete is called for it.
	Pending func(finance.RequestPayment) bool
}

// Responder answers the finance and tickets messages. Subscribe it to the
// bus the relay delivers to.
type Responder struct {
	outbox es.Outbox
	reg    *es.Registry
	cfg    Config
	mu     sync.Mutex // one answer at a time: the stand-in is not the thing under test
}

// New returns a responder writing to outbox.
func New(outbox es.Outbox, cfg Config) (*Responder, error) {
	reg := es.NewRegistry()
	if err := errors.Join(finance.RegisterMessages(reg), tickets.RegisterMessages(reg), Register(reg)); err != nil {
		return nil, err
	}
	return &Responder{outbox: outbox, reg: reg, cfg: cfg}, nil
}

// Subscribe subscribes the responder to bus.
func (r *Responder) Subscribe(bus *es.Bus) {
	bus.Subscribe("finance.RequestPayment", r.handle)
	bus.Subscribe("finance.RefundPayment", r.handle)
	bus.Subscribe("tickets.IssueTickets", r.handle)
	bus.Subscribe("tickets.VoidTickets", r.handle)
}

func (r *Responder) handle(ctx context.Context, m es.Message) error {
	v, err := es.DecodeMessage(r.reg, m)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch msg := v.(type) {
	case finance.RequestPayment:
		return r.requestPayment(ctx, msg)
	case finance.RefundPayment:
		return r.refund(ctx, msg)
	case tickets.IssueTickets:
		return r.issue(ctx, msg)
	case tickets.VoidTickets:
		return r.void(ctx, msg)
	}
	return fmt.Errorf("standin: unexpected message %s", m.Type)
}

func (r *Responder) requestPayment(ctx context.Context, p finance.RequestPayment) error {
	var event, answer any
	switch reason, declined := r.decline(p); {
	case declined:
		event = Declined{PaymentID: p.PaymentID, OrderID: p.OrderID, Reason: reason}
		answer = finance.PaymentFailed{PaymentID: p.PaymentID, OrderID: p.OrderID, Reason: reason}
	case r.cfg.Pending != nil && r.cfg.Pending(p):
		event = Pending{PaymentID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount}
	default:
		event = Charged{PaymentID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount}
		answer = finance.PaymentSucceeded{PaymentID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount}
	}
	// A payment is decided once: a repeated request finds its stream.
	return r.write(ctx, PaymentStream(p.PaymentID), es.NoStream, p.PaymentID, p.OrderID, event, answer)
}

// Complete charges a pending payment and answers PaymentSucceeded.
func (r *Responder) Complete(ctx context.Context, paymentID string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	evs, version, err := r.load(ctx, PaymentStream(paymentID))
	if err != nil {
		return err
	}
	if len(evs) != 1 {
		return fmt.Errorf("%w: %s is not pending", ErrNotCharged, paymentID)
	}
	p, ok := evs[0].(Pending)
	if !ok {
		return fmt.Errorf("%w: %s is not pending", ErrNotCharged, paymentID)
	}
	return r.write(ctx, PaymentStream(paymentID), es.Exact(version), paymentID+"/complete", p.OrderID,
		Charged(p), finance.PaymentSucceeded{PaymentID: p.PaymentID, OrderID: p.OrderID, Amount: p.Amount})
}

// Ledger returns what a payment captured and what was refunded of it, in
// minor units.
func (r *Responder) Ledger(ctx context.Context, paymentID string) (charged, refunded int64, err error) {
	evs, _, err := r.load(ctx, PaymentStream(paymentID))
	for _, e := range evs {
		switch e := e.(type) {
		case Charged:
			charged += e.Amount.Amount
		case Refunded:
			refunded += e.Amount.Amount
		}
	}
	return charged, refunded, err
}

func (r *Responder) refund(ctx context.Context, rf finance.RefundPayment) error {
	evs, version, err := r.load(ctx, PaymentStream(rf.PaymentID))
	if err != nil {
		return err
	}
	var charged money.Money
	for _, e := range evs {
		switch e := e.(type) {
		case Charged:
			charged = e.Amount
		case Refunded:
			if e.RefundID == rf.RefundID {
				return nil // refunded already
			}
			charged.Amount -= e.Amount.Amount
		}
	}
	if rf.Amount.Amount <= 0 || rf.Amount.Currency != charged.Currency || rf.Amount.Amount > charged.Amount {
		return fmt.Errorf("%w: refund of %s from %s holding %s", ErrNotCharged, rf.Amount, rf.PaymentID, charged)
	}
	return r.write(ctx, PaymentStream(rf.PaymentID), es.Exact(version), rf.RefundID, rf.OrderID,
		Refunded{PaymentID: rf.PaymentID, RefundID: rf.RefundID, OrderID: rf.OrderID, Amount: rf.Amount},
		finance.PaymentRefunded{PaymentID: rf.PaymentID, RefundID: rf.RefundID, OrderID: rf.OrderID, Amount: rf.Amount})
}

func (r *Responder) issue(ctx context.Context, it tickets.IssueTickets) error {
	var ids []string
	for tt, n := range it.Seats {
		for i := range n {
			ids = append(ids, es.DeriveID("standin/ticket/"+it.OrderID+"/"+tt, i))
		}
	}
	return r.write(ctx, TicketStream(it.OrderID), es.NoStream, it.OrderID, it.OrderID,
		Issued{OrderID: it.OrderID, TicketIDs: ids, Delivery: it.Delivery}, tickets.TicketsIssued{OrderID: it.OrderID, TicketIDs: ids})
}

func (r *Responder) void(ctx context.Context, v tickets.VoidTickets) error {
	evs, version, err := r.load(ctx, TicketStream(v.OrderID))
	if err != nil || len(evs) != 1 {
		return err // none issued, or voided already
	}
	return r.write(ctx, TicketStream(v.OrderID), es.Exact(version), v.OrderID+"/void", v.OrderID, Voided{OrderID: v.OrderID, Reason: v.Reason}, nil)
}

func (r *Responder) decline(p finance.RequestPayment) (string, bool) {
	if r.cfg.Decline == nil {
		return "", false
	}
	return r.cfg.Decline(p)
}

func (r *Responder) load(ctx context.Context, stream string) ([]any, int64, error) {
	var out []any
	var version int64
	for e, err := range r.outbox.ReadStream(ctx, stream, es.StreamQuery{}) {
		if err != nil {
			return nil, 0, err
		}
		v, err := r.reg.Decode(e)
		if err != nil {
			return nil, 0, err
		}
		out, version = append(out, v), e.Version
	}
	return out, version, nil
}

// write appends event to stream and enqueues answer (unless nil), keyed by
// key (the order: answers about one order are delivered in order), in one
// transaction, both with IDs derived from id. A stream created meanwhile
// means the request was decided already; a conflict on a stream that
// existed is returned, and the redelivered request decides again.
func (r *Responder) write(ctx context.Context, stream string, expected es.ExpectedVersion, id, key string, event, answer any) error {
	d, err := r.reg.Encode(event)
	if err != nil {
		return err
	}
	d.ID = es.DeriveID("standin/event/"+id, 0)
	var enq es.Enqueue
	if answer != nil {
		m, err := es.NewMessage(r.reg, key, answer)
		if err != nil {
			return err
		}
		m.ID = es.DeriveID("standin/answer/"+id, 0)
		enq.Messages = []es.Message{m}
	}
	_, err = r.outbox.AppendEnqueue(ctx, enq, es.StreamAppend{StreamID: stream, Expected: expected, Events: []es.EventData{d}})
	if expected == es.NoStream && (errors.Is(err, es.ErrConcurrency) || errors.Is(err, es.ErrDuplicateEventID)) {
		return nil
	}
	return err
}
