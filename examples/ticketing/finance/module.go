package finance

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// Config configures a [Module].
type Config struct {
	// Store holds the module's streams and its outbox.
	Store es.Outbox
	// Registry encodes events and messages; [Register] must have been
	// applied to it.
	Registry *es.Registry
	// Gateway charges and refunds (default: a [FakeGateway] that
	// captures everything).
	Gateway Gateway
	// Clock stamps events and decides deadlines (default es.SystemClock).
	Clock es.Clock
	// PaymentTimeout bounds how long a payment may wait for the gateway's
	// outcome, retries included, before it fails (default 15 minutes).
	PaymentTimeout time.Duration
	// MaxAttempts bounds the retries of a decision on a contended stream,
	// an organizer's invoice book above all (default 1000: every payment
	// of a flash sale is invoiced in one book).
	MaxAttempts int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Module is the financial module: it handles the messages that other
// modules and finance itself send through the outbox (see [Module.Subscribe]),
// the gateway's webhooks ([NewWebhookHandler]) and its users' billing
// information.
//
// Every call to the gateway happens in a message handler fed by the
// outbox's relay, after the decision asking for it was stored, and
// carries an idempotency key derived from the payment or refund ID. Its
// outcome is recorded by a command whose events, and the messages they
// cause, are stored in one transaction. A crash anywhere in between makes
// the relay deliver the message again: the command is repeated (nothing
// new), the gateway sees the same key (nothing charged twice), and the
// outcome is recorded once.
type Module struct {
	cfg      Config
	payments *es.CommandHandler[Payment, PaymentCommand, PaymentEvent]
	billing  *es.CommandHandler[Billing, SetBillingInfo, BillingEvent]
	invoices *es.MultiStreamHandler
}

// New returns the module.
func New(cfg Config) (*Module, error) {
	if cfg.Store == nil || cfg.Registry == nil {
		return nil, errors.New("finance: Store and Registry are required")
	}
	if cfg.PaymentTimeout < 0 || cfg.MaxAttempts < 0 {
		return nil, errors.New("finance: negative PaymentTimeout or MaxAttempts")
	}
	if cfg.Gateway == nil {
		cfg.Gateway = NewFakeGateway()
	}
	if cfg.Clock == nil {
		cfg.Clock = es.SystemClock{}
	}
	cfg.PaymentTimeout = cmp.Or(cfg.PaymentTimeout, 15*time.Minute)
	cfg.MaxAttempts = cmp.Or(cfg.MaxAttempts, 1000)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// An organizer's invoice book takes an event per invoice: a stadium's
	// sale would fold the whole year's book for every invoice. Its state
	// is two numbers, snapshotted where the store keeps snapshots.
	ic := es.HandlerConfig{MaxAttempts: cfg.MaxAttempts}
	if _, ok := cfg.Store.(es.SnapshotStore); ok {
		ic.SnapshotEvery = 100
	}
	return &Module{
		cfg: cfg,
		payments: es.NewCommandHandler(cfg.Store, cfg.Registry, PaymentDecider(), es.HandlerConfig{
			MaxAttempts: 20, SerializePerStream: true, Announce: es.Announce(announcePayment)}),
		billing:  es.NewCommandHandler(cfg.Store, cfg.Registry, BillingDecider(), es.HandlerConfig{}),
		invoices: es.NewMultiStreamHandler(cfg.Store, cfg.Registry, ic),
	}, nil
}

// Subscribe subscribes the module's message handlers to bus (an *es.Bus,
// or anything that routes messages by type to handlers): the public
// RequestPayment and RefundPayment, and finance's own messages.
func (m *Module) Subscribe(bus interface {
	Subscribe(msgType string, h func(ctx context.Context, m es.Message) error)
}) {
	bus.Subscribe("finance.RequestPayment", m.HandleRequestPayment)
	bus.Subscribe("finance.RefundPayment", m.HandleRefundPayment)
	bus.Subscribe("finance.PaymentTimedOut", m.HandlePaymentTimedOut)
	bus.Subscribe("finance.ReverseCapture", m.HandleReverseCapture)
	bus.Subscribe("finance.InvoiceDue", m.HandleInvoiceDue)
	bus.Subscribe("finance.CreditDue", m.HandleCreditDue)
}

// ChargeKey is the idempotency key of a payment's charge.
func ChargeKey(paymentID string) string { return "payment-" + paymentID }

// RefundKey is the idempotency key of a refund.
func RefundKey(refundID string) string { return "refund-" + refundID }

// reversalKey is the idempotency key of a late capture's reversal.
func reversalKey(paymentID string) string { return "reversal-" + paymentID }

// InvoiceID returns the ID of an order's invoice.
func InvoiceID(orderID string) string { return es.DeriveID("finance/invoice/"+orderID, 0) }

// outcomeID is the command ID under which a synchronous answer of the
// gateway is recorded: the same on every redelivery.
func outcomeID(what, id string) string { return es.DeriveID("finance/"+what+"/"+id, 0) }

// Payment returns the state of an order's payment.
func (m *Module) Payment(ctx context.Context, orderID string) (Payment, error) {
	p, _, err := m.payments.Load(ctx, PaymentStream(orderID))
	return p, err
}

// SetBillingInfo records a user's billing details.
func (m *Module) SetBillingInfo(ctx context.Context, commandID string, c SetBillingInfo) error {
	_, err := m.billing.Handle(ctx, commandID, BillingStream(c.UserID), c)
	return err
}

// Record runs a payment command (an outcome reported by the gateway, say)
// on an order's payment. commandID makes it idempotent.
func (m *Module) Record(ctx context.Context, commandID, orderID string, cmd PaymentCommand) error {
	_, err := m.payments.Handle(ctx, commandID, PaymentStream(orderID), cmd)
	return err
}

// HandleRequestPayment handles a [RequestPayment] message: it records the
// request (once per order), charges the gateway and records the outcome.
// A transient gateway failure is returned, so that the relay delivers the
// message again after a backoff; the payment's deadline ends the retries.
func (m *Module) HandleRequestPayment(ctx context.Context, msg es.Message) error {
	req, err := decode[RequestPayment](m.cfg.Registry, msg)
	if err != nil {
		return err
	}
	now := m.cfg.Clock.Now()
	res, err := m.payments.Handle(ctx, msg.ID, PaymentStream(req.OrderID), Request{RequestPayment: req, At: now, GiveUpAt: now.Add(m.cfg.PaymentTimeout)})
	switch {
	case errors.Is(err, ErrPaymentAlreadyRequested):
		// The order's own payment answers for it.
		m.cfg.Logger.ErrorContext(ctx, "finance: second payment for an order refused", "order", req.OrderID, "payment", req.PaymentID, "err", err)
		return nil
	case isRuleBroken(err):
		// Nothing is recorded, but the sender hears why.
		m.cfg.Logger.ErrorContext(ctx, "finance: payment request refused", "order", req.OrderID, "payment", req.PaymentID, "err", err)
		return m.send(ctx, es.DeriveID(msg.ID+"/refused", 0), "finance-"+req.PaymentID,
			PaymentFailed{PaymentID: req.PaymentID, OrderID: req.OrderID, Reason: "invalid payment request: " + err.Error()})
	case err != nil:
		return err
	}
	p := res.State
	if p.Status != Pending || p.PaymentID != req.PaymentID {
		return nil // settled already: this is a redelivery
	}
	return m.charge(ctx, p)
}

func (m *Module) charge(ctx context.Context, p Payment) error {
	billing, _, err := m.billing.Load(ctx, BillingStream(p.UserID))
	if err != nil {
		return err
	}
	r, err := m.cfg.Gateway.Charge(ctx, Charge{IdempotencyKey: ChargeKey(p.PaymentID), PaymentID: p.PaymentID,
		OrderID: p.OrderID, UserID: p.UserID, Amount: p.Amount, PaymentMethod: billing.PaymentMethod,
		Description: "order " + p.OrderID})
	var declined *DeclinedError
	switch {
	case errors.As(err, &declined):
		return m.Record(ctx, outcomeID("charge", p.PaymentID), p.OrderID,
			RecordDecline{Code: declined.Code, Reason: declined.Reason, At: m.cfg.Clock.Now()})
	case err != nil:
		m.cfg.Logger.WarnContext(ctx, "finance: charge failed; the relay retries it", "payment", p.PaymentID,
			"give_up_at", p.GiveUpAt, "err", err)
		return fmt.Errorf("finance: charge payment %s: %w", p.PaymentID, err)
	case r.Status == ChargePending:
		return nil // the webhook brings the outcome; the deadline bounds the wait
	}
	return m.Record(ctx, outcomeID("charge", p.PaymentID), p.OrderID, RecordCapture{GatewayID: r.GatewayID, Amount: r.Amount, At: m.cfg.Clock.Now()})
}

// HandlePaymentTimedOut handles a payment's deadline: a payment without
// an outcome by then fails.
func (m *Module) HandlePaymentTimedOut(ctx context.Context, msg es.Message) error {
	t, err := decode[PaymentTimedOut](m.cfg.Registry, msg)
	if err != nil {
		return err
	}
	return m.Record(ctx, msg.ID, t.OrderID, GiveUp{At: m.cfg.Clock.Now()})
}

// HandleReverseCapture refunds a capture that came after its payment had
// failed.
func (m *Module) HandleReverseCapture(ctx context.Context, msg es.Message) error {
	rc, err := decode[ReverseCapture](m.cfg.Registry, msg)
	if err != nil {
		return err
	}
	r, err := m.cfg.Gateway.Refund(ctx, RefundRequest{IdempotencyKey: reversalKey(rc.PaymentID), RefundID: "reversal-" + rc.PaymentID,
		PaymentID: rc.PaymentID, OrderID: rc.OrderID, GatewayID: rc.GatewayID, Amount: rc.Amount})
	if err != nil {
		return fmt.Errorf("finance: reverse late capture of %s: %w", rc.PaymentID, err)
	}
	return m.Record(ctx, outcomeID("reversal", rc.PaymentID), rc.OrderID, RecordReversal{GatewayRefundID: r.GatewayRefundID, At: m.cfg.Clock.Now()})
}

// HandleRefundPayment handles a [RefundPayment] message: it reserves the
// amount on the payment (refused, with nothing written, if it would exceed
// what was captured), asks the gateway, and records the outcome.
func (m *Module) HandleRefundPayment(ctx context.Context, msg es.Message) error {
	rp, err := decode[RefundPayment](m.cfg.Registry, msg)
	if err != nil {
		return err
	}
	res, err := m.payments.Handle(ctx, msg.ID, PaymentStream(rp.OrderID),
		RequestRefund{RefundID: rp.RefundID, Amount: rp.Amount, Reason: rp.Reason, At: m.cfg.Clock.Now()})
	if isRuleBroken(err) {
		m.cfg.Logger.ErrorContext(ctx, "finance: refund refused", "order", rp.OrderID, "refund", rp.RefundID, "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	p := res.State
	if ref := p.Refunds[rp.RefundID]; ref == nil || ref.Status != refundRequested {
		return nil
	}
	r, err := m.cfg.Gateway.Refund(ctx, RefundRequest{IdempotencyKey: RefundKey(rp.RefundID), RefundID: rp.RefundID,
		PaymentID: p.PaymentID, OrderID: p.OrderID, GatewayID: p.GatewayID, Amount: rp.Amount})
	var declined *DeclinedError
	switch {
	case errors.As(err, &declined):
		return m.Record(ctx, outcomeID("refund", rp.RefundID), p.OrderID, RecordRefundFailure{RefundID: rp.RefundID, Reason: declined.Reason, At: m.cfg.Clock.Now()})
	case err != nil:
		return fmt.Errorf("finance: refund %s: %w", rp.RefundID, err)
	case r.Pending:
		return nil
	}
	return m.Record(ctx, outcomeID("refund", rp.RefundID), p.OrderID, RecordRefund{RefundID: rp.RefundID, GatewayRefundID: r.GatewayRefundID, At: m.cfg.Clock.Now()})
}

// HandleInvoiceDue issues the invoice of a captured payment.
func (m *Module) HandleInvoiceDue(ctx context.Context, msg es.Message) error {
	due, err := decode[InvoiceDue](m.cfg.Registry, msg)
	if err != nil {
		return err
	}
	now := m.cfg.Clock.Now()
	_, err = m.invoices.Handle(ctx, msg.ID, func(ctx context.Context, d *es.Decision) error {
		return IssueInvoiceFor(ctx, d, due, now)
	})
	if isRuleBroken(err) {
		m.cfg.Logger.ErrorContext(ctx, "finance: invoice refused", "order", due.OrderID, "err", err)
		return nil
	}
	return err
}

// IssueInvoiceFor is the decision that issues the invoice of a paid
// order at now: it takes the next number of the organizer's book for
// now's year (UTC), and records the number and the invoice in one atomic
// append over both streams. An order invoiced already gets nothing new.
func IssueInvoiceFor(ctx context.Context, d *es.Decision, due InvoiceDue, now time.Time) error {
	year := now.UTC().Year()
	book := BookStream(due.OrganizerID, year)
	b, err := es.Load(ctx, d, BookDecider(), book)
	if err != nil {
		return err
	}
	billing, err := es.Load(ctx, d, BillingDecider(), BillingStream(due.UserID))
	if err != nil {
		return err
	}
	id, seq := InvoiceID(due.OrderID), b.LastInvoice+1
	events, err := es.DecideOn(ctx, d, InvoiceDecider(), InvoiceStream(due.OrderID), InvoiceCommand(IssueInvoice{
		InvoiceID: id, Number: InvoiceNumber(due.OrganizerID, year, seq), OrganizerID: due.OrganizerID,
		Year: year, Seq: seq, OrderID: due.OrderID, PaymentID: due.PaymentID, UserID: due.UserID,
		ConcertID: due.ConcertID, Buyer: billing.Info, Lines: due.Lines, Total: due.Total, At: now}))
	if err != nil || len(events) == 0 {
		return err
	}
	return es.Record(d, book, BookEvent(InvoiceNumbered{Seq: seq, InvoiceID: id, OrderID: due.OrderID}))
}

// HandleCreditDue issues the credit note of a completed refund.
func (m *Module) HandleCreditDue(ctx context.Context, msg es.Message) error {
	due, err := decode[CreditDue](m.cfg.Registry, msg)
	if err != nil {
		return err
	}
	now := m.cfg.Clock.Now()
	_, err = m.invoices.Handle(ctx, msg.ID, func(ctx context.Context, d *es.Decision) error {
		year := now.UTC().Year()
		book := BookStream(due.OrganizerID, year)
		b, err := es.Load(ctx, d, BookDecider(), book)
		if err != nil {
			return err
		}
		id, seq := es.DeriveID("finance/credit-note/"+due.RefundID, 0), b.LastCreditNote+1
		events, err := es.DecideOn(ctx, d, InvoiceDecider(), InvoiceStream(due.OrderID), InvoiceCommand(IssueCreditNote{
			CreditNoteID: id, Number: CreditNoteNumber(due.OrganizerID, year, seq), Seq: seq,
			RefundID: due.RefundID, Amount: due.Amount, Reason: due.Reason, At: now}))
		if err != nil || len(events) == 0 {
			return err
		}
		return es.Record(d, book, BookEvent(CreditNoteNumbered{Seq: seq, CreditNoteID: id, OrderID: due.OrderID}))
	})
	if errors.Is(err, ErrNoInvoice) {
		// The invoice is on its way (its message has another key): wait.
		return err
	}
	if isRuleBroken(err) {
		m.cfg.Logger.ErrorContext(ctx, "finance: credit note refused", "order", due.OrderID, "refund", due.RefundID, "err", err)
		return nil
	}
	return err
}

// announcePayment turns a payment's new events into the messages they
// cause, enqueued in the same transaction.
func announcePayment(_ string, p Payment, events []PaymentEvent) []es.Send {
	var out []es.Send
	id := func(what string) string { return es.DeriveID("finance/"+what+"/"+p.PaymentID, 0) }
	// Outcomes keep their order among themselves (success before
	// refunds), but must not wait behind a request the relay is retrying
	// under the payment ID's key.
	key := "finance-" + p.PaymentID
	for _, e := range events {
		switch e := e.(type) {
		case PaymentRequested:
			// Its own key: a deadline must not wait behind the request
			// it bounds, which may be retrying.
			out = append(out, es.Send{Message: PaymentTimedOut{PaymentID: e.PaymentID, OrderID: e.OrderID},
				Key: "deadline-" + e.PaymentID, DeliverAt: e.GiveUpAt, ID: id("deadline")})
		case PaymentCaptured:
			out = append(out,
				es.Send{Message: PaymentSucceeded{PaymentID: e.PaymentID, OrderID: e.OrderID, Amount: e.Amount}, Key: key, ID: id("succeeded")},
				// Keyed by the organizer's invoice book: the relay hands
				// one book's invoices over one after the other, so they
				// do not contend for its next number.
				es.Send{Message: InvoiceDue{OrderID: p.OrderID, PaymentID: p.PaymentID, UserID: p.UserID, ConcertID: p.ConcertID,
					OrganizerID: p.OrganizerID, Lines: p.Lines, Total: p.Amount, PaidAt: e.CapturedAt},
					Key: "invoicebook-" + p.OrganizerID, ID: id("invoice")})
		case PaymentDeclined:
			out = append(out, es.Send{Message: PaymentFailed{PaymentID: e.PaymentID, OrderID: e.OrderID, Reason: e.Reason}, Key: key, ID: id("failed")})
		case LateCaptureDetected:
			out = append(out, es.Send{Message: ReverseCapture{PaymentID: e.PaymentID, OrderID: e.OrderID, GatewayID: e.GatewayID, Amount: e.Amount},
				Key: key, ID: id("reverse")})
		case RefundCompleted:
			out = append(out,
				es.Send{Message: PaymentRefunded{PaymentID: e.PaymentID, RefundID: e.RefundID, OrderID: e.OrderID, Amount: e.Amount},
					Key: key, ID: id("refunded/" + e.RefundID)},
				es.Send{Message: CreditDue{OrderID: e.OrderID, OrganizerID: e.OrganizerID, RefundID: e.RefundID, Amount: e.Amount,
					Reason: p.Refunds[e.RefundID].Reason, RefundedAt: e.CompletedAt},
					Key: "invoicebook-" + p.OrganizerID, ID: id("credit/" + e.RefundID)})
		}
	}
	return out
}

// send enqueues one message on its own.
func (m *Module) send(ctx context.Context, id, key string, v any) error {
	msg, err := es.NewMessage(m.cfg.Registry, key, v)
	if err != nil {
		return err
	}
	msg.ID, msg.Metadata = id, es.MetadataFrom(ctx)
	_, err = m.cfg.Store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{msg}})
	return err
}

func decode[T any](reg *es.Registry, msg es.Message) (T, error) {
	var zero T
	v, err := es.DecodeMessage(reg, msg)
	if err != nil {
		return zero, fmt.Errorf("finance: %w", err)
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("finance: message %s is a %T, not a %T", msg.ID, v, zero)
	}
	return t, nil
}

// isRuleBroken reports a business rule's refusal: retrying the same
// command cannot change it.
func isRuleBroken(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{ErrInvalidPayment, ErrLinesDoNotAddUp, ErrPaymentAlreadyRequested, ErrUnknownPayment,
		ErrCaptureMismatch, ErrNotCaptured, ErrRefundExceedsCapture, ErrInvalidRefund, ErrRefundIDReused, ErrUnknownRefund,
		ErrInvoiceImmutable, ErrNoInvoice, ErrCreditExceedsInvoice, ErrInvalidInvoice, ErrInvalidBillingInfo,
		money.ErrCurrencyMismatch, money.ErrInvalidCurrency, money.ErrOverflow} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
