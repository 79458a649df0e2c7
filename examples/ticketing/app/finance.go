package app

import (
	"context"
	"errors"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/finance"
)

// wireFinance builds the financial module on the event store's outbox and
// subscribes its handlers to the bus the relay feeds: the orders process's
// RequestPayment and RefundPayment messages are charged and refunded
// there (never inside a command), and their outcomes are recorded by
// commands that enqueue PaymentSucceeded, PaymentFailed and
// PaymentRefunded in the same transaction as the payment's events.
//
// Two clocks bound a payment that the bank does not answer: the order's
// PaymentDue (the hold's end plus PaymentGrace) and finance's own
// PaymentTimeout (15 minutes), each deciding for its own module. Either
// may come first, and both ends are safe: if the order gives up first, a
// capture that comes later reaches it as PaymentSucceeded and it asks for
// a refund; if finance gives up first, the order hears PaymentFailed, and
// finance itself reverses a capture that comes later.
func (a *App) wireFinance(ob es.Outbox) error {
	if a.cfg.Payments == nil {
		a.cfg.Payments = finance.NewFakeGateway()
	}
	m, err := finance.New(finance.Config{Store: ob, Registry: a.reg, Gateway: a.cfg.Payments, Clock: a.cfg.Clock, Logger: a.cfg.Logger})
	if err != nil {
		return err
	}
	m.Subscribe(a.routes.module("finance"))
	a.Finance = m
	return nil
}

// StripeWebhook returns the handler Stripe posts its webhook events to,
// verified with the endpoint's signing secret, for the web application to
// mount (POST /webhooks/stripe). It needs an event store with an outbox.
func (a *App) StripeWebhook(secret string) (*finance.WebhookHandler, error) {
	if a.Finance == nil {
		return nil, errNoOutbox
	}
	return finance.NewWebhookHandler(a.Finance, finance.WebhookConfig{Secret: secret, Clock: a.cfg.Clock, Logger: a.cfg.Logger})
}

// SetBillingInfo records a user's billing details and saved payment
// method, used by the invoices and charges that follow.
func (a *App) SetBillingInfo(ctx context.Context, commandID string, c finance.SetBillingInfo) error {
	if a.Finance == nil {
		return errNoOutbox
	}
	return a.Finance.SetBillingInfo(ctx, commandID, c)
}

var errNoOutbox = errors.New("app: the financial module needs an event store with an outbox")
