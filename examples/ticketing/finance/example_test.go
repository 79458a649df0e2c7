package finance_test

import (
	"context"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
)

// The orders process asks for a payment with a message keyed by the payment
// ID; the ID travels to the gateway as the idempotency key.
func ExampleRequestPayment() {
	reg := es.NewRegistry()
	if err := finance.RegisterMessages(reg); err != nil {
		panic(err)
	}
	price := money.Money{Amount: 25000, Currency: "PLN"}
	m, err := es.NewMessage(reg, "payment-1", finance.RequestPayment{
		PaymentID: "payment-1", OrderID: "order-1", UserID: "ola", ConcertID: "warsaw", OrganizerID: "org",
		Amount: price, Lines: []finance.InvoiceLine{{Description: "Standing", Quantity: 1, UnitPrice: price}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Type, m.Key)
	// Output: finance.RequestPayment payment-1
}

// A payment request goes through the outbox: the relay hands it to the
// module, which records it, charges the gateway and records the outcome
// together with the message that announces it. Here the fake gateway
// declines the buyer's card.
func ExampleModule() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := es.NewRegistry()
	if err := finance.Register(reg); err != nil {
		panic(err)
	}
	gateway := finance.NewFakeGateway()
	gateway.DeclineUser("ala", "insufficient_funds")
	m, err := finance.New(finance.Config{Store: store, Registry: reg, Gateway: gateway})
	if err != nil {
		panic(err)
	}
	bus := es.NewBus()
	m.Subscribe(bus)
	outcomes := make(chan any, 2)
	for _, typ := range []string{"finance.PaymentSucceeded", "finance.PaymentFailed"} {
		bus.Subscribe(typ, func(_ context.Context, msg es.Message) error {
			v, err := es.DecodeMessage(reg, msg)
			outcomes <- v
			return err
		})
	}
	relay := es.NewRelay(store, bus, es.RelayConfig{PollInterval: time.Millisecond})
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = relay.Run(ctx) }()

	price := money.Money{Amount: 25000, Currency: "PLN"}
	for _, buyer := range []string{"ola", "ala"} {
		msg, err := es.NewMessage(reg, "payment-"+buyer, finance.RequestPayment{
			PaymentID: "payment-" + buyer, OrderID: "order-" + buyer, UserID: buyer, ConcertID: "warsaw", OrganizerID: "org",
			Amount: price, Lines: []finance.InvoiceLine{{Description: "Standing", Quantity: 1, UnitPrice: price}}})
		if err != nil {
			panic(err)
		}
		if _, err := store.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{msg}}); err != nil {
			panic(err)
		}
		fmt.Printf("%+v\n", <-outcomes)
	}
	// Output:
	// {PaymentID:payment-ola OrderID:order-ola Amount:250.00 PLN}
	// {PaymentID:payment-ala OrderID:order-ala Reason:your card was declined}
}
