package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/courier"
	"esgo.dev/examples/ticketing/tickets/mailer"
)

// ErrNoTickets: the event store has no outbox, so the tickets module,
// whose deliveries are driven by the outbox, is not running.
var ErrNoTickets = errors.New("app: tickets need an event store with an outbox")

// setupTickets builds the tickets module on ob and subscribes it to the
// bus the relay feeds: IssueTickets and VoidTickets from the orders
// process, and the module's own SendTicket and CheckParcel. The mailer and
// courier are called there, in the relay's publisher, never in a command.
func (a *App) setupTickets(ob es.Outbox) error {
	if a.cfg.Mailer == nil {
		dir := filepath.Join(os.TempDir(), "ticketing-mail")
		folder, err := mailer.NewFolder(dir, "tickets@ticketing.example")
		if err != nil {
			return err
		}
		a.cfg.Logger.Debug("app: ticket e-mails go to .eml files", "dir", dir)
		a.cfg.Mailer = folder
	}
	if a.cfg.Courier == nil {
		a.cfg.Courier = courier.NewFake(courier.FakeConfig{}).Client()
	}
	svc, err := tickets.NewService(tickets.Config{Outbox: ob, Registry: a.reg, Mailer: a.cfg.Mailer, Courier: a.cfg.Courier,
		Clock: a.cfg.Clock, MaxAttempts: a.cfg.MaxAttempts, Logger: a.cfg.Logger})
	if err != nil {
		return err
	}
	svc.Subscribe(a.routes.module("tickets"))
	a.tickets = svc
	return nil
}

// ScanTicket admits the ticket a gate scanned, exactly once (see
// tickets.Service.Admit): a second scan anywhere fails with a
// *tickets.AlreadyUsedError naming the gate and time of the first, a
// voided ticket with tickets.ErrTicketVoided. commandID identifies the
// scan, so that a gate's retry of one scan is told it admitted.
func (a *App) ScanTicket(ctx context.Context, commandID string, scan tickets.Scan) (tickets.Admission, error) {
	if a.tickets == nil {
		return tickets.Admission{}, ErrNoTickets
	}
	return a.tickets.Admit(ctx, commandID, scan)
}

// ResendTicket sends a ticket again at an admin's request, to the same
// address or to another (see tickets.Service.Resend). It is idempotent by
// commandID.
func (a *App) ResendTicket(ctx context.Context, commandID, ticketID string, to *tickets.Delivery) error {
	if a.tickets == nil {
		return ErrNoTickets
	}
	return a.tickets.Resend(ctx, commandID, ticketID, to)
}
