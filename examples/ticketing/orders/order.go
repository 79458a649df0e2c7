package orders

import (
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/tickets"
)

// Business errors of the orders module.
var (
	// ErrInvalidOrder: an order without an ID, user, concert or lines, a
	// line without a ticket type, a quantity below 1, a price that is not
	// positive, lines in two currencies, or an unknown delivery method.
	ErrInvalidOrder = errors.New("orders: invalid order")
	// ErrNoOrder: no order with that ID.
	ErrNoOrder = errors.New("orders: no such order")
	// ErrTooLateToCancel: the order is paid; only the concert's
	// cancellation refunds it.
	ErrTooLateToCancel = errors.New("orders: a paid order cannot be cancelled by the buyer")
)

// Status is where an order is in the purchase.
type Status string

// Order statuses. Completed, Rejected and Cancelled are final, except that
// a completed order is still cancelled (and refunded) when its concert is.
const (
	// Placed: waiting for the inventory to hold the seats.
	Placed Status = "placed"
	// AwaitingPayment: seats held until the hold's end, payment requested.
	AwaitingPayment Status = "awaiting_payment"
	// Paid: payment captured; the seats are being confirmed.
	Paid Status = "paid"
	// Confirmed: the seats are the buyer's; tickets are being issued.
	Confirmed Status = "confirmed"
	// Completed: the tickets are issued.
	Completed Status = "completed"
	// Rejected: no seats could be held; nothing was charged and the
	// order's lines went back into the buyer's cart.
	Rejected Status = "rejected"
	// Cancelled: the order was given up; held seats were released and a
	// captured payment refunded.
	Cancelled Status = "cancelled"
)

// Final reports whether no step of the purchase is left to take.
func (s Status) Final() bool { return s == Completed || s == Rejected || s == Cancelled }

// Event is an event of an order stream, "order-<order ID>".
type Event interface{ isEvent() }

// OrderPlaced: an order was made from a checked-out cart; its first
// reservation is ReservationID.
type OrderPlaced struct {
	OrderID       string           `json:"order_id"`
	UserID        string           `json:"user_id"`
	CartNo        int              `json:"cart_no"`
	ConcertID     string           `json:"concert_id"`
	OrganizerID   string           `json:"organizer_id"`
	Lines         []Line           `json:"lines"`
	Total         money.Money      `json:"total"`
	Delivery      tickets.Delivery `json:"delivery"`
	PaymentID     string           `json:"payment_id"`
	ReservationID string           `json:"reservation_id"`
}

// OrderSeatsHeld: the order's seats are held until ExpiresAt.
type OrderSeatsHeld struct {
	OrderID       string    `json:"order_id"`
	ReservationID string    `json:"reservation_id"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// OrderRejected: no seats could be held, for Reason. Nothing was charged.
type OrderRejected struct {
	OrderID string `json:"order_id"`
	Reason  string `json:"reason"`
}

// PaymentCaptured: the order's payment went through.
type PaymentCaptured struct {
	OrderID   string      `json:"order_id"`
	PaymentID string      `json:"payment_id"`
	Amount    money.Money `json:"amount"`
}

// HoldLapsed: the payment came after the hold had run out; the order asks
// for seats again as NextReservationID.
type HoldLapsed struct {
	OrderID           string `json:"order_id"`
	ReservationID     string `json:"reservation_id"`
	NextReservationID string `json:"next_reservation_id"`
}

// OrderSeatsConfirmed: the seats are the buyer's for good.
type OrderSeatsConfirmed struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
}

// OrderCompleted: the tickets were issued.
type OrderCompleted struct {
	OrderID   string   `json:"order_id"`
	TicketIDs []string `json:"ticket_ids"`
}

// Refund is a refund an order asks finance for.
type Refund struct {
	PaymentID string      `json:"payment_id"`
	RefundID  string      `json:"refund_id"`
	Amount    money.Money `json:"amount"`
}

// OrderCancelled: the order was given up, for Reason (told to the buyer).
// It records the compensation decided: the reservation to release, the
// refund to make, whether to void the tickets.
type OrderCancelled struct {
	OrderID          string  `json:"order_id"`
	Reason           string  `json:"reason"`
	ConcertCancelled bool    `json:"concert_cancelled,omitempty"`
	Release          string  `json:"release,omitempty"`
	Refund           *Refund `json:"refund,omitempty"`
	VoidTickets      bool    `json:"void_tickets,omitempty"`
}

// LatePaymentRefunded: a payment captured after the order was rejected or
// cancelled (finance answered after the hold ran out, say) is given back.
type LatePaymentRefunded struct {
	OrderID string `json:"order_id"`
	Refund  Refund `json:"refund"`
}

// HoldReleased: seats were held for the order after it no longer wanted
// them (the answer came after the order was rejected or cancelled); they
// are released.
type HoldReleased struct {
	OrderID       string `json:"order_id"`
	ReservationID string `json:"reservation_id"`
}

// RefundCompleted: finance gave the money back.
type RefundCompleted struct {
	OrderID  string      `json:"order_id"`
	RefundID string      `json:"refund_id"`
	Amount   money.Money `json:"amount"`
}

// TicketDeliveryFailed: a ticket could not be delivered.
type TicketDeliveryFailed struct {
	OrderID  string `json:"order_id"`
	TicketID string `json:"ticket_id"`
	Reason   string `json:"reason"`
}

func (OrderPlaced) isEvent()          {}
func (OrderSeatsHeld) isEvent()       {}
func (OrderRejected) isEvent()        {}
func (PaymentCaptured) isEvent()      {}
func (HoldLapsed) isEvent()           {}
func (OrderSeatsConfirmed) isEvent()  {}
func (OrderCompleted) isEvent()       {}
func (OrderCancelled) isEvent()       {}
func (LatePaymentRefunded) isEvent()  {}
func (HoldReleased) isEvent()         {}
func (RefundCompleted) isEvent()      {}
func (TicketDeliveryFailed) isEvent() {}

// Order is the state of an order: the TicketOrder of the workshop design.
type Order struct {
	ID, UserID, ConcertID, OrganizerID string
	CartNo                             int
	Lines                              []Line
	Total                              money.Money
	Delivery                           tickets.Delivery
	Status                             Status
	Reason                             string
	// ReservationID is the current reservation; Holds counts those asked
	// for (it names the next); Held reports that the current one holds
	// seats, until HoldExpiresAt.
	ReservationID string
	Holds         int
	Held          bool
	HoldExpiresAt time.Time
	PaymentID     string
	// Captured is the money taken from the buyer and Refunded what was
	// given back or is being given back; RefundsDone counts the refunds
	// finance confirmed.
	Captured, Refunded money.Money
	RefundsDone        int
	TicketsRequested   bool
	TicketIDs          []string
	DeliveryFailures   int
}

// Stream returns the stream of an order.
func Stream(orderID string) string { return Name + "-" + orderID }

// PaymentID returns the payment ID of an order: one payment per order, so
// that finance, which is idempotent by payment ID, charges it once.
func PaymentID(orderID string) string { return es.DeriveID("orders/payment/"+orderID, 0) }

// ReservationID returns the ID of an order's nth reservation (from 0).
func ReservationID(orderID string, n int) string {
	return es.DeriveID("orders/reservation/"+orderID, n)
}

func refundID(paymentID string) string { return es.DeriveID("orders/refund/"+paymentID, 0) }

// Decider returns the TicketOrder decider: what each message means for an
// order, as events. Its commands are the messages the order process
// handles (PlaceOrder, CancelOrder, the seat step's answers, finance's and
// tickets' answers, the PaymentDue deadline); a message that changes
// nothing, being late, repeated or stray, decides no event. The process
// ([Process]) turns the events into messages for the other modules.
func Decider() es.Decider[Order, any, Event] {
	return es.Decider[Order, any, Event]{Initial: func() Order { return Order{} }, Decide: decide, Evolve: evolve}
}

func decide(s Order, msg any) ([]Event, error) {
	switch m := msg.(type) {
	case PlaceOrder:
		if s.Status != "" {
			return nil, nil // placed already: a repeated checkout message
		}
		total, err := validate(m)
		if err != nil {
			return nil, err
		}
		return []Event{OrderPlaced{OrderID: m.OrderID, UserID: m.UserID, CartNo: m.CartNo, ConcertID: m.ConcertID,
			OrganizerID: m.OrganizerID, Lines: m.Lines, Total: total, Delivery: m.Delivery,
			PaymentID: PaymentID(m.OrderID), ReservationID: ReservationID(m.OrderID, 0)}}, nil
	case CancelOrder:
		return cancel(s, m)
	case SeatsHeld:
		switch {
		case s.Status == "":
			return nil, nil
		case m.ReservationID == s.ReservationID && (s.Status == Placed || s.Status == Paid) && !s.Held:
			return []Event{OrderSeatsHeld{OrderID: s.ID, ReservationID: m.ReservationID, ExpiresAt: m.ExpiresAt.UTC()}}, nil
		case m.ReservationID == s.ReservationID && s.Held:
			return nil, nil // told twice
		}
		// Held for an order that gave up on these seats meanwhile.
		return []Event{HoldReleased{OrderID: s.ID, ReservationID: m.ReservationID}}, nil
	case SeatsUnavailable:
		if m.ReservationID != s.ReservationID || s.Held {
			return nil, nil
		}
		switch s.Status {
		case Placed:
			return []Event{OrderRejected{OrderID: s.ID, Reason: "no seats: " + m.Reason}}, nil
		case Paid:
			return []Event{s.cancelled("the seats were released before the payment arrived and are sold out: "+m.Reason, false)}, nil
		}
		return nil, nil
	case finance.PaymentSucceeded:
		if m.PaymentID != s.PaymentID || s.Captured.Amount != 0 {
			return nil, nil
		}
		switch s.Status {
		case AwaitingPayment:
			return []Event{PaymentCaptured{OrderID: s.ID, PaymentID: m.PaymentID, Amount: m.Amount}}, nil
		case Rejected, Cancelled:
			return []Event{LatePaymentRefunded{OrderID: s.ID, Refund: Refund{PaymentID: m.PaymentID, RefundID: refundID(m.PaymentID), Amount: m.Amount}}}, nil
		}
		return nil, nil
	case finance.PaymentFailed:
		if m.PaymentID != s.PaymentID || s.Status != AwaitingPayment {
			return nil, nil
		}
		return []Event{s.cancelled("payment failed: "+m.Reason, false)}, nil
	case PaymentDue:
		if m.ReservationID != s.ReservationID || s.Status != AwaitingPayment {
			return nil, nil
		}
		return []Event{s.cancelled("the payment was not completed before the seats' hold ran out", false)}, nil
	case SeatsConfirmed:
		if m.ReservationID != s.ReservationID || s.Status != Paid || !s.Held {
			return nil, nil
		}
		return []Event{OrderSeatsConfirmed{OrderID: s.ID, ReservationID: m.ReservationID}}, nil
	case SeatsLapsed:
		if m.ReservationID != s.ReservationID || s.Status != Paid || !s.Held {
			return nil, nil
		}
		return []Event{HoldLapsed{OrderID: s.ID, ReservationID: m.ReservationID, NextReservationID: ReservationID(s.ID, s.Holds)}}, nil
	case tickets.TicketsIssued:
		if s.Status != Confirmed {
			return nil, nil
		}
		return []Event{OrderCompleted{OrderID: s.ID, TicketIDs: m.TicketIDs}}, nil
	case tickets.DeliveryFailed:
		if s.Status != Confirmed && s.Status != Completed {
			return nil, nil
		}
		return []Event{TicketDeliveryFailed{OrderID: s.ID, TicketID: m.TicketID, Reason: m.Reason}}, nil
	case finance.PaymentRefunded:
		if m.PaymentID != s.PaymentID || s.Refunded.Amount == 0 || s.RefundsDone > 0 {
			return nil, nil
		}
		return []Event{RefundCompleted{OrderID: s.ID, RefundID: m.RefundID, Amount: m.Amount}}, nil
	}
	return nil, fmt.Errorf("orders: unknown message %T", msg)
}

func validate(m PlaceOrder) (money.Money, error) {
	if m.OrderID == "" || m.UserID == "" || m.ConcertID == "" || len(m.Lines) == 0 {
		return money.Money{}, fmt.Errorf("%w: an order needs an ID, a user, a concert and lines", ErrInvalidOrder)
	}
	if m.Delivery.Method != tickets.ByEmail && m.Delivery.Method != tickets.ByCourier {
		return money.Money{}, fmt.Errorf("%w: delivery method %q", ErrInvalidOrder, m.Delivery.Method)
	}
	total := money.Money{Currency: m.Lines[0].UnitPrice.Currency}
	for _, l := range m.Lines {
		if l.TicketType == "" || l.Quantity < 1 || l.UnitPrice.Amount <= 0 {
			return money.Money{}, fmt.Errorf("%w: line %+v", ErrInvalidOrder, l)
		}
		sub, err := l.UnitPrice.Times(l.Quantity)
		if err != nil {
			return money.Money{}, fmt.Errorf("%w: %w", ErrInvalidOrder, err)
		}
		if total, err = total.Add(sub); err != nil {
			return money.Money{}, fmt.Errorf("%w: %w", ErrInvalidOrder, err)
		}
	}
	return total, nil
}

func cancel(s Order, m CancelOrder) ([]Event, error) {
	switch {
	case s.Status == "":
		return nil, fmt.Errorf("%w: %s", ErrNoOrder, m.OrderID)
	case s.Status == Rejected || s.Status == Cancelled:
		return nil, nil
	case !m.ConcertCancelled && s.Captured.Amount != 0:
		return nil, fmt.Errorf("%w: %s is %s", ErrTooLateToCancel, s.ID, s.Status)
	}
	reason := m.Reason
	if reason == "" {
		reason = "cancelled by the buyer"
		if m.ConcertCancelled {
			reason = "the concert was cancelled"
		}
	}
	return []Event{s.cancelled(reason, m.ConcertCancelled)}, nil
}

// cancelled decides the compensation of giving the order up now: release
// seats held and not confirmed, refund what was captured, void tickets
// asked for.
func (s Order) cancelled(reason string, concert bool) OrderCancelled {
	e := OrderCancelled{OrderID: s.ID, Reason: reason, ConcertCancelled: concert, VoidTickets: s.TicketsRequested}
	if s.Held && s.Status != Confirmed && s.Status != Completed {
		e.Release = s.ReservationID
	}
	if s.Captured.Amount != 0 && s.Refunded.Amount == 0 {
		e.Refund = &Refund{PaymentID: s.PaymentID, RefundID: refundID(s.PaymentID), Amount: s.Captured}
	}
	return e
}

func evolve(s Order, e Event) Order {
	switch e := e.(type) {
	case OrderPlaced:
		s = Order{ID: e.OrderID, UserID: e.UserID, CartNo: e.CartNo, ConcertID: e.ConcertID, OrganizerID: e.OrganizerID,
			Lines: e.Lines, Total: e.Total, Delivery: e.Delivery, Status: Placed, PaymentID: e.PaymentID,
			ReservationID: e.ReservationID, Holds: 1}
	case OrderSeatsHeld:
		s.Held, s.HoldExpiresAt = true, e.ExpiresAt
		if s.Status == Placed {
			s.Status = AwaitingPayment
		}
	case OrderRejected:
		s.Status, s.Reason = Rejected, e.Reason
	case PaymentCaptured:
		s.Status, s.Captured = Paid, e.Amount
	case HoldLapsed:
		s.ReservationID, s.Holds, s.Held, s.HoldExpiresAt = e.NextReservationID, s.Holds+1, false, time.Time{}
	case OrderSeatsConfirmed:
		s.Status, s.TicketsRequested = Confirmed, true
	case OrderCompleted:
		s.Status, s.TicketIDs = Completed, e.TicketIDs
	case OrderCancelled:
		s.Status, s.Reason = Cancelled, e.Reason
		if e.Release != "" {
			s.Held = false
		}
		if e.Refund != nil {
			s.Refunded = e.Refund.Amount
		}
	case LatePaymentRefunded:
		s.Captured, s.Refunded = e.Refund.Amount, e.Refund.Amount
	case HoldReleased:
		if e.ReservationID == s.ReservationID {
			s.Held = false
		}
	case RefundCompleted:
		s.RefundsDone++
	case TicketDeliveryFailed:
		s.DeliveryFailures++
	}
	return s
}
