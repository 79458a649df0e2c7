package es_test

import (
	"context"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
)

// A payment process: when an order is placed it requests the payment and
// sets a 15-minute deadline; if the deadline fires before the payment
// arrives, it cancels the order. paymentProcess is in process_test.go.
// Here a loop stands in for the relay, so that the clock can be moved.
func ExampleProcessManager() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := paymentRegistry()
	clock := estest.NewFakeClock(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	payments := es.NewProcessHandler(store, reg, paymentProcess, es.ProcessConfig{Clock: clock})

	deliver := func() {
		msgs, _ := store.Due(ctx, clock.Now(), allBuckets(), 100)
		for _, m := range msgs {
			fmt.Println(clock.Now().Format("15:04"), m.Type, string(m.Data))
			if err := payments.Handle(ctx, m.Message); err != nil {
				fmt.Println(err)
			}
			store.MarkDelivered(ctx, m.Seq)
		}
	}
	placed, _ := es.NewMessage(reg, "o-1", OrderPlaced{OrderID: "o-1", Amount: 4200})
	store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{placed}})
	deliver()
	deliver()
	clock.Advance(15 * time.Minute)
	deliver()
	deliver()
	state, _ := payments.State(ctx, "o-1")
	fmt.Println("status:", state.Status)
	// Output:
	// 12:00 orders.OrderPlaced {"order_id":"o-1","amount":4200}
	// 12:00 finance.RequestPayment {"order_id":"o-1","amount":4200}
	// 12:15 payment.TimedOut {"order_id":"o-1"}
	// 12:15 orders.CancelOrder {"order_id":"o-1","reason":"payment not received in time"}
	// status: expired
}
