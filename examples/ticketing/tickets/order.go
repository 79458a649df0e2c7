package tickets

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"esgo.dev/es"
)

// OrderStream returns the stream that lists an order's tickets.
func OrderStream(orderID string) string { return "ordertickets-" + orderID }

// OrderCommand is a command for an order's ticket list.
type OrderCommand interface{ isOrderCommand() }

// RecordIssue records the tickets issued for an order.
type RecordIssue struct {
	OrderID   string    `json:"order_id"`
	TicketIDs []string  `json:"ticket_ids"`
	At        time.Time `json:"at"`
}

// RecordVoid records that an order's tickets were voided.
type RecordVoid struct {
	OrderID string    `json:"order_id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func (RecordIssue) isOrderCommand() {}
func (RecordVoid) isOrderCommand()  {}

// OrderEvent is an event of an order's ticket list.
type OrderEvent interface{ isOrderEvent() }

// OrderTicketsIssued: these are the order's tickets.
type OrderTicketsIssued struct {
	OrderID   string    `json:"order_id"`
	TicketIDs []string  `json:"ticket_ids"`
	At        time.Time `json:"at"`
}

// OrderTicketsVoided: the order's tickets are void, and a later
// IssueTickets for the order (one that overtook its VoidTickets on the
// way) issues none.
type OrderTicketsVoided struct {
	OrderID string    `json:"order_id"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

func (OrderTicketsIssued) isOrderEvent() {}
func (OrderTicketsVoided) isOrderEvent() {}

// OrderTickets is the state of an order's ticket list.
type OrderTickets struct {
	TicketIDs []string
	Issued    bool
	Voided    bool
}

// OrderDecider returns the decider of an order's ticket list: it makes
// issuing idempotent per order (a second IssueTickets, under any message
// ID, finds the order issued) and remembers a void.
func OrderDecider() es.Decider[OrderTickets, OrderCommand, OrderEvent] {
	return es.Decider[OrderTickets, OrderCommand, OrderEvent]{
		Initial: func() OrderTickets { return OrderTickets{} },
		Decide: func(s OrderTickets, c OrderCommand) ([]OrderEvent, error) {
			switch c := c.(type) {
			case RecordIssue:
				if s.Issued || s.Voided {
					return nil, nil
				}
				return []OrderEvent{OrderTicketsIssued{OrderID: c.OrderID, TicketIDs: slices.Clone(c.TicketIDs), At: c.At.UTC()}}, nil
			case RecordVoid:
				if s.Voided {
					return nil, nil
				}
				return []OrderEvent{OrderTicketsVoided{OrderID: c.OrderID, Reason: c.Reason, At: c.At.UTC()}}, nil
			}
			return nil, fmt.Errorf("tickets: unknown order command %T", c)
		},
		Evolve: func(s OrderTickets, e OrderEvent) OrderTickets {
			switch e := e.(type) {
			case OrderTicketsIssued:
				s.Issued, s.TicketIDs = true, e.TicketIDs
			case OrderTicketsVoided:
				s.Voided = true
			}
			return s
		},
	}
}

// seatList returns the (ticket type, seat number) pairs of an order, in a
// fixed order, or an error if a count is not positive.
func seatList(seats map[string]int) ([]seat, error) {
	if len(seats) == 0 {
		return nil, fmt.Errorf("%w: no seats", ErrInvalidIssue)
	}
	var out []seat
	for _, tt := range slices.Sorted(maps.Keys(seats)) {
		n := seats[tt]
		if tt == "" || n < 1 || n > MaxSeatsPerOrder {
			return nil, fmt.Errorf("%w: %d seats of ticket type %q", ErrInvalidIssue, n, tt)
		}
		for i := 1; i <= n; i++ {
			out = append(out, seat{ticketType: tt, n: i})
		}
	}
	if len(out) > MaxSeatsPerOrder {
		return nil, fmt.Errorf("%w: %d seats, at most %d per order", ErrInvalidIssue, len(out), MaxSeatsPerOrder)
	}
	return out, nil
}

type seat struct {
	ticketType string
	n          int
}
