package es_test

import (
	"context"
	"slices"
	"time"

	"esgo.dev/es"
)

// An order's payment process: the domain of the process-manager tests.

// Messages.
type (
	OrderPlaced struct {
		OrderID string `json:"order_id"`
		Amount  int64  `json:"amount"`
	}
	PaymentReceived struct {
		OrderID string `json:"order_id"`
	}
	PaymentTimedOut struct {
		OrderID string `json:"order_id"`
	}
	RequestPayment struct {
		OrderID string `json:"order_id"`
		Amount  int64  `json:"amount"`
	}
	ShipOrder struct {
		OrderID string `json:"order_id"`
	}
	CancelOrder struct {
		OrderID string `json:"order_id"`
		Reason  string `json:"reason"`
	}
)

// The process's own events.
type (
	PaymentEvent   interface{ isPaymentEvent() }
	PaymentAwaited struct {
		OrderID string `json:"order_id"`
	}
	PaymentSettled struct{}
	PaymentExpired struct{}
)

func (PaymentAwaited) isPaymentEvent() {}
func (PaymentSettled) isPaymentEvent() {}
func (PaymentExpired) isPaymentEvent() {}

type Payment struct {
	OrderID string
	Status  string // "", "awaiting", "paid", "expired"
}

const paymentWindow = 15 * time.Minute

var paymentProcess = es.ProcessManager[Payment, PaymentEvent]{
	Name: "payment",
	Correlate: func(msg any) string {
		switch m := msg.(type) {
		case OrderPlaced:
			return m.OrderID
		case PaymentReceived:
			return m.OrderID
		case PaymentTimedOut:
			return m.OrderID
		}
		return ""
	},
	Initial: func() Payment { return Payment{} },
	React: func(p Payment, msg any, now time.Time) (es.Reaction[PaymentEvent], error) {
		var r es.Reaction[PaymentEvent]
		switch m := msg.(type) {
		case OrderPlaced:
			if p.Status != "" {
				return r, nil
			}
			r.Events = []PaymentEvent{PaymentAwaited{OrderID: m.OrderID}}
			r.Send = []es.Send{
				//lint:ignore S1016 a command sent is not a converted message received: their fields must stay free to differ
				{Message: RequestPayment{OrderID: m.OrderID, Amount: m.Amount}},
				{Message: PaymentTimedOut{OrderID: m.OrderID}, DeliverAt: now.Add(paymentWindow),
					ID: es.DeadlineID("payment", m.OrderID, "timeout")},
			}
		case PaymentReceived:
			if p.Status != "awaiting" {
				return r, nil
			}
			r.Events = []PaymentEvent{PaymentSettled{}}
			r.Send = []es.Send{{Message: ShipOrder{OrderID: p.OrderID}}}
			r.Cancel = []string{es.DeadlineID("payment", p.OrderID, "timeout")}
		case PaymentTimedOut:
			if p.Status != "awaiting" {
				return r, nil
			}
			r.Events = []PaymentEvent{PaymentExpired{}}
			r.Send = []es.Send{{Message: CancelOrder{OrderID: p.OrderID, Reason: "payment not received in time"}}}
		}
		return r, nil
	},
	Evolve: func(p Payment, e PaymentEvent) Payment {
		switch e := e.(type) {
		case PaymentAwaited:
			p.OrderID, p.Status = e.OrderID, "awaiting"
		case PaymentSettled:
			p.Status = "paid"
		case PaymentExpired:
			p.Status = "expired"
		}
		return p
	},
}

func paymentRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[OrderPlaced](reg, "orders.OrderPlaced")
	es.MustRegister[PaymentReceived](reg, "finance.PaymentReceived")
	es.MustRegister[PaymentTimedOut](reg, "payment.TimedOut")
	es.MustRegister[RequestPayment](reg, "finance.RequestPayment")
	es.MustRegister[ShipOrder](reg, "shipping.ShipOrder")
	es.MustRegister[CancelOrder](reg, "orders.CancelOrder")
	es.MustRegister[PaymentAwaited](reg, "PaymentAwaited")
	es.MustRegister[PaymentSettled](reg, "PaymentSettled")
	es.MustRegister[PaymentExpired](reg, "PaymentExpired")
	return reg
}

// due lists the types of the messages due at now, in order.
func due(o es.Outbox, now time.Time) []string {
	msgs, _ := o.Due(context.Background(), now, allBuckets(), 1000)
	var out []string
	for _, m := range msgs {
		out = append(out, m.Type)
	}
	return out
}

func allBuckets() []int {
	var b []int
	for i := range es.OutboxBuckets {
		b = append(b, i)
	}
	return slices.Clip(b)
}
