package tickets

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"esgo.dev/es"
)

// ErrInvalidIssue: an IssueTickets lacks an order, a user, a concert or
// seats, or asks for more than MaxSeatsPerOrder.
var ErrInvalidIssue = errors.New("tickets: invalid IssueTickets")

// MaxSeatsPerOrder bounds the tickets of one order: they are issued in
// one atomic append.
const MaxSeatsPerOrder = 100

// Config configures a [Service].
type Config struct {
	// Outbox is the event store; deliveries are driven by its messages.
	Outbox es.Outbox
	// Registry has the module's events and messages (Register and
	// RegisterMessages).
	Registry *es.Registry
	// Mailer sends e-mail deliveries and Courier printed ones.
	Mailer  Mailer
	Courier Courier
	// Clock stamps events and schedules retries (default es.SystemClock).
	Clock es.Clock
	// Retry bounds a delivery's attempts (default 5 attempts, 30s doubling
	// to at most 30m between them).
	Retry RetryPolicy
	// TrackEvery is how often a parcel's tracking is checked (default 1m).
	TrackEvery time.Duration
	// MaxAttempts bounds the retries of a command on a contended stream
	// (default 5).
	MaxAttempts int
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service runs the tickets module: it issues and voids tickets on the
// orders process's messages, drives their delivery from the outbox, admits
// them at the gate and resends them on an admin's request.
//
// Nothing is sent to a mail provider or courier inside a command: a
// decision records a DeliveryRequested and enqueues a SendTicket in the
// same append, and the relay's publisher (a [es.Bus] the Service is
// subscribed to, see [Service.Subscribe]) sends it and records the
// outcome. A crash between sending and recording leaves the SendTicket in
// the outbox, undelivered: it is sent again, with the same idempotency
// key, and recorded then. The delivery is never lost; it may be sent
// twice only where the provider cannot deduplicate (see package mailer).
type Service struct {
	cfg        Config
	multi      *es.MultiStreamHandler
	tickets    *es.CommandHandler[Ticket, TicketCommand, TicketEvent]
	deliveries *es.CommandHandler[TicketDelivery, DeliveryCommand, DeliveryEvent]
}

// NewService returns a service. It fails if Outbox, Registry, Mailer or
// Courier is missing, or Retry is half set.
func NewService(cfg Config) (*Service, error) {
	if cfg.Outbox == nil || cfg.Registry == nil || cfg.Mailer == nil || cfg.Courier == nil {
		return nil, errors.New("tickets: Outbox, Registry, Mailer and Courier are required")
	}
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = RetryPolicy{MaxAttempts: 5, MinBackoff: 30 * time.Second, MaxBackoff: 30 * time.Minute}
	}
	if !cfg.Retry.valid() {
		return nil, fmt.Errorf("tickets: invalid retry policy %+v", cfg.Retry)
	}
	cfg.TrackEvery = cmp.Or(cfg.TrackEvery, time.Minute)
	if cfg.Clock == nil {
		cfg.Clock = es.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	hc := es.HandlerConfig{MaxAttempts: cfg.MaxAttempts}
	return &Service{
		cfg:        cfg,
		multi:      es.NewMultiStreamHandler(cfg.Outbox, cfg.Registry, hc),
		tickets:    es.NewCommandHandler(cfg.Outbox, cfg.Registry, TicketDecider(), hc),
		deliveries: es.NewCommandHandler(cfg.Outbox, cfg.Registry, DeliveryDecider(), hc),
	}, nil
}

// Subscribe subscribes the service to the messages it handles:
// "tickets.IssueTickets", "tickets.VoidTickets" and its own SendTicket and
// CheckParcel, on bus (an *es.Bus, or anything that routes messages by
// type to handlers). Each handler is idempotent by message ID, so the
// bus's redeliveries are harmless.
func (s *Service) Subscribe(bus interface {
	Subscribe(msgType string, h func(ctx context.Context, m es.Message) error)
}) {
	bus.Subscribe("tickets.IssueTickets", s.issue)
	bus.Subscribe("tickets.VoidTickets", s.void)
	bus.Subscribe(SendTicketType, s.sendTicket)
	bus.Subscribe(CheckParcelType, s.checkParcel)
}

// Ticket returns a ticket's state (not Exists if there is no such ticket).
func (s *Service) Ticket(ctx context.Context, ticketID string) (Ticket, error) {
	t, _, err := s.tickets.Load(ctx, TicketStream(ticketID))
	return t, err
}

// Delivery returns the state of a ticket's delivery.
func (s *Service) Delivery(ctx context.Context, ticketID string) (TicketDelivery, error) {
	d, _, err := s.deliveries.Load(ctx, DeliveryStream(ticketID))
	return d, err
}

func decode[T any](reg *es.Registry, m es.Message) (T, error) {
	var zero T
	v, err := es.DecodeMessage(reg, m)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("tickets: message %s is a %T, not a %T", m.ID, v, zero)
	}
	return t, nil
}

// firstRequestID is the ID of a ticket's first sending: derived from the
// ticket, so that it is the same however often the order is issued.
func firstRequestID(ticketID string) string {
	return es.DeriveID("tickets:first-delivery:"+ticketID, 0)
}

// issue issues an order's tickets, one per seat, with their first
// delivery requests, in one append with the messages that follow: a
// SendTicket per ticket and TicketsIssued for the orders process. The
// message ID is the command ID, and the order's ticket list makes a second
// IssueTickets for the order issue nothing, whatever its ID. A delivery
// that cannot be carried out (a malformed address) does not stop the
// tickets being issued: the paid tickets exist, and the delivery fails
// with a reason the buyer can act on.
func (s *Service) issue(ctx context.Context, m es.Message) error {
	cmd, err := decode[IssueTickets](s.cfg.Registry, m)
	if err != nil {
		return err
	}
	if cmd.OrderID == "" || cmd.UserID == "" || cmd.ConcertID == "" {
		return fmt.Errorf("%w: order %q needs an order, a user and a concert", ErrInvalidIssue, cmd.OrderID)
	}
	seats, err := seatList(cmd.Seats)
	if err != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	_, err = s.multi.Handle(ctx, m.ID, func(ctx context.Context, d *es.Decision) error {
		order, err := es.Load(ctx, d, OrderDecider(), OrderStream(cmd.OrderID))
		if err != nil || order.Issued || order.Voided {
			return err
		}
		ids := make([]string, len(seats))
		for i, st := range seats {
			id := TicketID(cmd.OrderID, st.ticketType, st.n)
			ids[i] = id
			if _, err := es.DecideOn(ctx, d, TicketDecider(), TicketStream(id), TicketCommand(IssueTicket{
				TicketID: id, OrderID: cmd.OrderID, UserID: cmd.UserID, ConcertID: cmd.ConcertID,
				TicketType: st.ticketType, Seat: st.n, Code: NewCode(id), At: now,
			})); err != nil {
				return err
			}
			if err := s.decideDelivery(ctx, d, id, RequestDelivery{TicketID: id, OrderID: cmd.OrderID, UserID: cmd.UserID,
				RequestID: firstRequestID(id), Delivery: cmd.Delivery, At: now}); err != nil {
				return err
			}
		}
		if _, err := es.DecideOn(ctx, d, OrderDecider(), OrderStream(cmd.OrderID), OrderCommand(RecordIssue{OrderID: cmd.OrderID, TicketIDs: ids, At: now})); err != nil {
			return err
		}
		return d.Send(es.Send{Key: cmd.OrderID, Message: TicketsIssued{OrderID: cmd.OrderID, TicketIDs: ids}})
	})
	return err
}

// void voids an order's tickets and stops their deliveries under way.
func (s *Service) void(ctx context.Context, m es.Message) error {
	cmd, err := decode[VoidTickets](s.cfg.Registry, m)
	if err != nil {
		return err
	}
	if cmd.OrderID == "" {
		return fmt.Errorf("%w: VoidTickets without an order", ErrInvalidIssue)
	}
	now := s.cfg.Clock.Now()
	_, err = s.multi.Handle(ctx, m.ID, func(ctx context.Context, d *es.Decision) error {
		order, err := es.Load(ctx, d, OrderDecider(), OrderStream(cmd.OrderID))
		if err != nil {
			return err
		}
		if _, err := es.DecideOn(ctx, d, OrderDecider(), OrderStream(cmd.OrderID), OrderCommand(RecordVoid{OrderID: cmd.OrderID, Reason: cmd.Reason, At: now})); err != nil {
			return err
		}
		for _, id := range order.TicketIDs {
			if _, err := es.DecideOn(ctx, d, TicketDecider(), TicketStream(id), TicketCommand(VoidTicket{TicketID: id, Reason: cmd.Reason, At: now})); err != nil {
				return err
			}
			if err := s.decideDelivery(ctx, d, id, CancelDelivery{Reason: "ticket voided: " + cmd.Reason, At: now}); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// decideDelivery decides cmd on a ticket's delivery within d and sends
// the messages that follow from its events.
func (s *Service) decideDelivery(ctx context.Context, d *es.Decision, ticketID string, cmd DeliveryCommand) error {
	events, err := es.DecideOn(ctx, d, DeliveryDecider(), DeliveryStream(ticketID), cmd)
	if err != nil {
		return err
	}
	for _, snd := range followUps(events, s.cfg.TrackEvery) {
		if err := d.Send(snd); err != nil {
			return err
		}
	}
	return nil
}

// record decides cmd on a ticket's delivery, as the command commandID.
func (s *Service) record(ctx context.Context, commandID, ticketID string, cmd DeliveryCommand) error {
	_, err := s.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
		return s.decideDelivery(ctx, d, ticketID, cmd)
	})
	return err
}

// sendTicket makes one attempt at a ticket's delivery: it runs in the
// relay's publisher, calls the mailer or courier, then records the
// outcome. A SendTicket whose attempt is no longer due (done, replaced,
// or redelivered after its outcome was recorded) does nothing.
func (s *Service) sendTicket(ctx context.Context, m es.Message) error {
	msg, err := decode[SendTicket](s.cfg.Registry, m)
	if err != nil {
		return err
	}
	del, err := s.Delivery(ctx, msg.TicketID)
	if err != nil {
		return err
	}
	if del.Status != StatusPending || del.RequestID != msg.RequestID || del.Attempt != msg.Attempt {
		return nil
	}
	t, err := s.Ticket(ctx, msg.TicketID)
	if err != nil {
		return err
	}
	if t.Voided {
		return s.record(ctx, es.DeriveID(m.ID+"/cancel", 0), msg.TicketID, CancelDelivery{Reason: "ticket voided: " + t.VoidReason, At: s.cfg.Clock.Now()})
	}
	ref, err := s.dispatch(ctx, del, t)
	if err != nil && ctx.Err() != nil {
		return err // stopping: the relay delivers the message again
	}
	// The outcome's command ID derives from the message: recording it
	// twice (a redelivery racing a slow first delivery) records it once.
	if err != nil {
		s.cfg.Logger.WarnContext(ctx, "tickets: delivery attempt failed", "ticket", t.ID, "method", del.Delivery.Method,
			"attempt", msg.Attempt, "err", err)
		return s.record(ctx, es.DeriveID(m.ID+"/outcome", 0), msg.TicketID, RecordFailure{RequestID: msg.RequestID, Attempt: msg.Attempt,
			Reason: err.Error(), Permanent: permanent(err), At: s.cfg.Clock.Now(), Retry: s.cfg.Retry})
	}
	return s.record(ctx, es.DeriveID(m.ID+"/outcome", 0), msg.TicketID, RecordSent{RequestID: msg.RequestID, Attempt: msg.Attempt,
		Reference: ref, At: s.cfg.Clock.Now()})
}

// dispatch hands the ticket to the mailer or the courier.
func (s *Service) dispatch(ctx context.Context, del TicketDelivery, t Ticket) (string, error) {
	if err := del.Delivery.Validate(); err != nil {
		return "", &PermanentError{Err: err}
	}
	if del.Delivery.Method == ByCourier {
		return s.cfg.Courier.Ship(ctx, Shipment{Key: del.DispatchKey(), TicketID: t.ID, To: *del.Delivery.Address, Code: t.Code})
	}
	mail, err := TicketMail(del.DispatchKey(), del.Delivery.Email, t)
	if err != nil {
		return "", err
	}
	return s.cfg.Mailer.Send(ctx, mail)
}

// checkParcel asks the courier where a shipped parcel is and records the
// answer. A lost parcel is compensated: the ticket gets a new code (the
// lost paper admits nobody), and a new parcel is sent after the backoff,
// until the delivery gives up.
func (s *Service) checkParcel(ctx context.Context, m es.Message) error {
	msg, err := decode[CheckParcel](s.cfg.Registry, m)
	if err != nil {
		return err
	}
	del, err := s.Delivery(ctx, msg.TicketID)
	if err != nil {
		return err
	}
	if del.Status != StatusShipped || del.Tracking != msg.Tracking {
		return nil
	}
	tr, err := s.cfg.Courier.Track(ctx, msg.Tracking)
	if err != nil && ctx.Err() != nil {
		return err
	}
	now := s.cfg.Clock.Now()
	commandID := es.DeriveID(m.ID+"/outcome", 0)
	switch {
	case err != nil:
		s.cfg.Logger.WarnContext(ctx, "tickets: tracking failed", "ticket", msg.TicketID, "tracking", msg.Tracking, "err", err)
	case tr.State == ParcelArrived:
		return s.record(ctx, commandID, msg.TicketID, RecordParcelDelivered{Tracking: msg.Tracking, At: now})
	case tr.State == ParcelMissing:
		_, err := s.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
			t, err := es.Load(ctx, d, TicketDecider(), TicketStream(msg.TicketID))
			if err != nil {
				return err
			}
			if err := s.decideDelivery(ctx, d, msg.TicketID, RecordParcelLost{Tracking: msg.Tracking, At: now, Retry: s.cfg.Retry}); err != nil {
				return err
			}
			if t.Voided || t.Admitted {
				return nil
			}
			_, err = es.DecideOn(ctx, d, TicketDecider(), TicketStream(t.ID), TicketCommand(ReplaceCode{TicketID: t.ID,
				Code: NewCode(t.ID), Reason: "parcel " + msg.Tracking + " lost", At: now}))
			return err
		})
		return err
	}
	// Still on its way (or the courier did not answer): look again later.
	next, err := es.NewMessage(s.cfg.Registry, msg.TicketID, msg)
	if err != nil {
		return err
	}
	next.ID, next.DeliverAt, next.Metadata = es.DeriveID(m.ID+"/next-check", 0), now.Add(s.cfg.TrackEvery), m.Metadata
	_, err = s.cfg.Outbox.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{next}})
	return err
}

// Scan is a ticket scanned at a gate of a concert.
type Scan struct {
	Code      string
	ConcertID string
	Gate      string
}

// Admission is a ticket that let its holder in.
type Admission struct {
	TicketID   string
	ConcertID  string
	TicketType string
	Gate       string
	At         time.Time
}

// Admit admits the ticket a gate scanned, once: of any number of scans of
// one ticket, at one gate or many, at the same moment or not, one admits
// it, and the others fail with an *AlreadyUsedError that says where and
// when (errors.Is ErrAlreadyUsed). The admission is appended with the
// ticket's version as the expectation, so two processes cannot both admit
// it. A voided ticket fails with ErrTicketVoided, a forged or replaced
// code with ErrInvalidCode.
//
// commandID identifies the scan: a gate that retries a scan whose answer
// it did not get passes the same ID, and is told the ticket was admitted,
// not that it was used.
func (s *Service) Admit(ctx context.Context, commandID string, sc Scan) (Admission, error) {
	id, err := CodeTicketID(sc.Code)
	if err != nil {
		return Admission{}, err
	}
	res, err := s.tickets.Handle(ctx, commandID, TicketStream(id), AdmitTicket{TicketID: id, Code: sc.Code,
		ConcertID: sc.ConcertID, Gate: sc.Gate, At: s.cfg.Clock.Now()})
	if err != nil {
		return Admission{}, err
	}
	t := res.State
	return Admission{TicketID: t.ID, ConcertID: t.ConcertID, TicketType: t.TicketType, Gate: t.Gate, At: t.AdmittedAt}, nil
}

// Resend sends a ticket again at an admin's request: to the address it
// went to before, or as to says. It is idempotent by commandID, which is
// required: the same request sends once, however often it is made. A
// ticket that is being sent, was voided or was used is not resent, nor one
// resent MaxResends times already (ErrTooManyResends). A reprint by
// courier gives the ticket a new code, so that only the newest paper
// admits.
func (s *Service) Resend(ctx context.Context, commandID, ticketID string, to *Delivery) error {
	if commandID == "" {
		return fmt.Errorf("%w: a resend needs a command ID", ErrInvalidDeliveryCommand)
	}
	if to != nil {
		if err := to.Validate(); err != nil {
			return err
		}
	}
	now := s.cfg.Clock.Now()
	_, err := s.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
		t, err := es.Load(ctx, d, TicketDecider(), TicketStream(ticketID))
		if err != nil {
			return err
		}
		switch {
		case !t.Exists():
			return ErrUnknownTicket
		case t.Voided:
			return fmt.Errorf("%w: %s", ErrTicketVoided, t.VoidReason)
		case t.Admitted:
			return &AlreadyUsedError{TicketID: t.ID, Gate: t.Gate, At: t.AdmittedAt}
		}
		prev, err := es.Load(ctx, d, DeliveryDecider(), DeliveryStream(ticketID))
		if err != nil {
			return err
		}
		target := prev.Delivery
		if to != nil {
			target = *to
		}
		if err := s.decideDelivery(ctx, d, ticketID, RequestDelivery{TicketID: ticketID, OrderID: t.OrderID, UserID: t.UserID,
			RequestID: es.DeriveID("tickets:resend:"+commandID+"/"+ticketID, 0), Delivery: target, At: now}); err != nil {
			return err
		}
		if target.Method != ByCourier {
			return nil
		}
		_, err = es.DecideOn(ctx, d, TicketDecider(), TicketStream(ticketID), TicketCommand(ReplaceCode{TicketID: ticketID,
			Code: NewCode(ticketID), Reason: "reprinted", At: now}))
		return err
	})
	return err
}
