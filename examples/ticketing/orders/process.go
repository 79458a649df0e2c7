package orders

import (
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/tickets"
)

// Name is the name of the order process: the category of the order
// streams, "order-<order ID>".
const Name = "order"

// PaymentDeadlineID returns the ID of an order's payment deadline.
func PaymentDeadlineID(orderID string) string { return es.DeadlineID(Name, orderID, "payment") }

// Config configures the order process. The zero value is a working
// configuration.
type Config struct {
	// PaymentGrace is how long past the end of the seats' hold the order
	// still waits for the payment before it gives up (default 0). The
	// hold is the reservations module's: its expiry process releases the
	// seats when it ends, whatever the order does. A payment captured in
	// the grace finds its seats released, and the order asks for them
	// again (refunding the payment if they are gone), rather than turning
	// away a buyer whose bank answered a few seconds late.
	PaymentGrace time.Duration
}

// Process returns the order process manager. Each order is an instance,
// whose state is the [Order] in the stream "order-<order ID>": the
// process decides with the TicketOrder decider ([Decider]) what a message
// means for the order, and sends, for each event decided, the messages it
// calls for. Events, messages and deadline changes commit together, so a
// step is either taken whole or not at all, and a redelivered message
// (recognised by its ID) takes none.
func Process(cfg Config) es.ProcessManager[Order, Event] {
	d := Decider()
	grace := max(cfg.PaymentGrace, 0)
	return es.ProcessManager[Order, Event]{
		Name:      Name,
		Correlate: correlate,
		Initial:   d.Initial,
		Evolve:    d.Evolve,
		React: func(s Order, msg any, _ time.Time) (es.Reaction[Event], error) {
			events, err := d.Decide(s, msg)
			if err != nil {
				return es.Reaction[Event]{}, err
			}
			r := es.Reaction[Event]{Events: events}
			for _, e := range events {
				sends, cancel := s.effects(e, grace)
				r.Send = append(r.Send, sends...)
				r.Cancel = append(r.Cancel, cancel...)
				s = d.Evolve(s, e)
			}
			return r, nil
		},
	}
}

func correlate(msg any) string {
	switch m := msg.(type) {
	case PlaceOrder:
		return m.OrderID
	case CancelOrder:
		return m.OrderID
	case SeatsHeld:
		return m.OrderID
	case SeatsUnavailable:
		return m.OrderID
	case SeatsConfirmed:
		return m.OrderID
	case SeatsLapsed:
		return m.OrderID
	case PaymentDue:
		return m.OrderID
	case finance.PaymentSucceeded:
		return m.OrderID
	case finance.PaymentFailed:
		return m.OrderID
	case finance.PaymentRefunded:
		return m.OrderID
	case tickets.TicketsIssued:
		return m.OrderID
	case tickets.DeliveryFailed:
		return m.OrderID
	}
	return ""
}

// effects returns the messages an event of the order in state s calls for,
// and the deadlines it cancels.
func (s Order) effects(e Event, grace time.Duration) (send []es.Send, cancel []string) {
	switch e := e.(type) {
	case OrderPlaced:
		return []es.Send{{Message: ReserveSeats{OrderID: e.OrderID, ConcertID: e.ConcertID, ReservationID: e.ReservationID,
			UserID: e.UserID, Seats: seats(e.Lines)}}}, nil
	case OrderSeatsHeld:
		if s.Status == Paid { // held again after the first hold lapsed
			return []es.Send{{Message: ConfirmSeats{OrderID: s.ID, ConcertID: s.ConcertID, ReservationID: e.ReservationID}}}, nil
		}
		return []es.Send{
			{Message: s.requestPayment(), Key: s.PaymentID},
			{Message: PaymentDue{OrderID: s.ID, ReservationID: e.ReservationID}, DeliverAt: e.ExpiresAt.Add(grace), ID: PaymentDeadlineID(s.ID)},
		}, nil
	case OrderRejected:
		return []es.Send{{Message: carts.RestoreItems{UserID: s.UserID, OrderID: s.ID, Lines: s.cartLines(), Delivery: cartDelivery(s.Delivery)}}}, nil
	case PaymentCaptured:
		return []es.Send{{Message: ConfirmSeats{OrderID: s.ID, ConcertID: s.ConcertID, ReservationID: s.ReservationID}}},
			[]string{PaymentDeadlineID(s.ID)}
	case HoldLapsed:
		return []es.Send{{Message: ReserveSeats{OrderID: s.ID, ConcertID: s.ConcertID, ReservationID: e.NextReservationID,
			UserID: s.UserID, Seats: seats(s.Lines)}}}, nil
	case OrderSeatsConfirmed:
		return []es.Send{{Message: tickets.IssueTickets{OrderID: s.ID, UserID: s.UserID, ConcertID: s.ConcertID,
			Seats: seats(s.Lines), Delivery: s.Delivery}}}, nil
	case OrderCancelled:
		if e.Release != "" {
			send = append(send, es.Send{Message: ReleaseSeats{OrderID: s.ID, ConcertID: s.ConcertID, ReservationID: e.Release}})
		}
		if e.Refund != nil {
			send = append(send, es.Send{Message: refund(s.ID, *e.Refund, e.Reason), Key: e.Refund.PaymentID})
		}
		if e.VoidTickets {
			send = append(send, es.Send{Message: tickets.VoidTickets{OrderID: s.ID, Reason: e.Reason}})
		}
		if s.Status == AwaitingPayment {
			cancel = []string{PaymentDeadlineID(s.ID)}
		}
		return send, cancel
	case LatePaymentRefunded:
		reason := "the order had ended when the payment arrived: " + s.Reason
		return []es.Send{{Message: refund(s.ID, e.Refund, reason), Key: e.Refund.PaymentID}}, nil
	case HoldReleased:
		return []es.Send{{Message: ReleaseSeats{OrderID: s.ID, ConcertID: s.ConcertID, ReservationID: e.ReservationID}}}, nil
	}
	return nil, nil
}

func (s Order) requestPayment() finance.RequestPayment {
	lines := make([]finance.InvoiceLine, len(s.Lines))
	for i, l := range s.Lines {
		lines[i] = finance.InvoiceLine{Description: l.ConcertName + ", " + l.TicketType, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
	}
	return finance.RequestPayment{PaymentID: s.PaymentID, OrderID: s.ID, UserID: s.UserID, ConcertID: s.ConcertID,
		OrganizerID: s.OrganizerID, Amount: s.Total, Lines: lines}
}

func refund(orderID string, r Refund, reason string) finance.RefundPayment {
	return finance.RefundPayment{PaymentID: r.PaymentID, RefundID: r.RefundID, OrderID: orderID, Amount: r.Amount, Reason: reason}
}

func seats(lines []Line) map[string]int {
	m := map[string]int{}
	for _, l := range lines {
		m[l.TicketType] += l.Quantity
	}
	return m
}

func (s Order) cartLines() []carts.Line {
	out := make([]carts.Line, len(s.Lines))
	for i, l := range s.Lines {
		out[i] = carts.Line{ConcertID: s.ConcertID, ConcertName: l.ConcertName, TicketType: l.TicketType, Quantity: l.Quantity, UnitPrice: l.UnitPrice}
	}
	return out
}

// cartDelivery and TicketDelivery translate between the carts module's
// delivery choice and the tickets module's contract: each module keeps
// its own shape.
func cartDelivery(d tickets.Delivery) *carts.Delivery {
	out := &carts.Delivery{Method: d.Method, Email: d.Email}
	if d.Address != nil {
		out.Address = &carts.PostalAddress{Name: d.Address.Name, Street: d.Address.Street, City: d.Address.City,
			PostalCode: d.Address.PostalCode, Country: d.Address.Country}
	}
	return out
}

// TicketDelivery returns the tickets module's form of a cart's delivery
// choice, for PlaceOrder.
func TicketDelivery(d carts.Delivery) tickets.Delivery {
	out := tickets.Delivery{Method: d.Method, Email: d.Email}
	if d.Address != nil {
		out.Address = &tickets.PostalAddress{Name: d.Address.Name, Street: d.Address.Street, City: d.Address.City,
			PostalCode: d.Address.PostalCode, Country: d.Address.Country}
	}
	return out
}
