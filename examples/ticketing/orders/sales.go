package orders

import (
	"time"

	"esgo.dev/es"
)

// SalesName is the name of the sales process: its instances are concerts,
// in the streams "sales-<concert ID>".
const SalesName = "sales"

// SalesEvent is an event of a sales stream.
type SalesEvent interface{ isSalesEvent() }

// SaleRecorded: an order of the concert was placed.
type SaleRecorded struct {
	ConcertID string `json:"concert_id"`
	OrderID   string `json:"order_id"`
}

// SalesStopped: the concert was cancelled; every order recorded so far was
// asked to cancel, and later ones are as they come.
type SalesStopped struct {
	ConcertID string `json:"concert_id"`
	Reason    string `json:"reason"`
}

func (SaleRecorded) isSalesEvent() {}
func (SalesStopped) isSalesEvent() {}

// Sales is the state of a concert's sales: its orders, in the order they
// were placed, and whether the concert was cancelled.
type Sales struct {
	ConcertID string
	Orders    []string
	Stopped   bool
	Reason    string
}

// SalesProcess returns the process that remembers the orders of each
// concert, so that a concert's cancellation reaches every one of them:
// it records each PlaceOrder (it gets the same message as the order
// process), and on ConcertCancelled sends CancelOrder, with
// ConcertCancelled set, to each. An order placed after the cancellation
// is cancelled as it is recorded (its seats would not be held anyway: the
// inventory closes with the concert). Reading a read model instead would
// miss the orders it had not caught up with.
func SalesProcess() es.ProcessManager[Sales, SalesEvent] {
	return es.ProcessManager[Sales, SalesEvent]{
		Name: SalesName,
		Correlate: func(msg any) string {
			switch m := msg.(type) {
			case PlaceOrder:
				return m.ConcertID
			case ConcertCancelled:
				return m.ConcertID
			}
			return ""
		},
		Initial: func() Sales { return Sales{} },
		React:   reactSales,
		// Orders grows by append: the fold stays linear.
		Evolve: func(s Sales, e SalesEvent) Sales {
			switch e := e.(type) {
			case SaleRecorded:
				s.ConcertID = e.ConcertID
				s.Orders = append(s.Orders, e.OrderID)
			case SalesStopped:
				s.ConcertID, s.Stopped, s.Reason = e.ConcertID, true, e.Reason
			}
			return s
		},
	}
}

func reactSales(s Sales, msg any, _ time.Time) (es.Reaction[SalesEvent], error) {
	var r es.Reaction[SalesEvent]
	switch m := msg.(type) {
	case PlaceOrder:
		// A repeated PlaceOrder is recognised by its message ID.
		r.Events = []SalesEvent{SaleRecorded{ConcertID: m.ConcertID, OrderID: m.OrderID}}
		if s.Stopped {
			r.Send = []es.Send{cancelFor(m.OrderID, s.Reason)}
		}
	case ConcertCancelled:
		if s.Stopped {
			return r, nil
		}
		//lint:ignore S1016 an event is not a converted message: their fields must stay free to differ
		r.Events = []SalesEvent{SalesStopped{ConcertID: m.ConcertID, Reason: m.Reason}}
		for _, id := range s.Orders {
			r.Send = append(r.Send, cancelFor(id, m.Reason))
		}
	}
	return r, nil
}

func cancelFor(orderID, reason string) es.Send {
	msg := "the concert was cancelled"
	if reason != "" {
		msg += ": " + reason
	}
	return es.Send{Message: CancelOrder{OrderID: orderID, Reason: msg, ConcertCancelled: true}, Key: orderID}
}
