package app_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/orders"
)

// A concert and its inventory are created in one append; a fan's cart
// snapshots the price; checkout places an order, whose process holds the
// seats and asks finance for the payment (no finance module is attached
// here, so the order waits for it); the read models follow once Run is
// going.
func ExampleApp() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Clock: estest.NewFakeClock(start), RelayPollInterval: 10 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	defer func() { stop(); <-done }()

	if err := a.CreateConcert(ctx, es.NewID(), concert("warsaw", 100)); err != nil {
		fmt.Println(err)
		return
	}
	if err := a.AddToCart(ctx, es.NewID(), "ala", "warsaw", "GA", 2); err != nil {
		fmt.Println(err)
		return
	}
	if err := a.ChooseDelivery(ctx, es.NewID(), "ala", carts.Delivery{Method: carts.ByEmail, Email: "ala@example.com"}); err != nil {
		fmt.Println(err)
		return
	}
	placed, err := a.Checkout(ctx, es.NewID(), "ala")
	if err != nil {
		fmt.Println(err)
		return
	}
	for {
		// The order process runs behind the relay.
		if o, err := a.Order(ctx, placed["warsaw"]); err == nil && o.Status == orders.AwaitingPayment {
			fmt.Println("order:", o.Status, o.Total)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.WaitForReadModels(ctx); err != nil {
		fmt.Println(err)
		return
	}
	d, _ := app.ConcertDetails(ctx, store.DB(), "warsaw") // the concert's details, with the reservations module's seats
	fmt.Println(d.Venue, d.TicketTypes[0].Name, d.TicketTypes[0].Price, "left:", d.TicketTypes[0].Left)
	// Output:
	// order: awaiting_payment 500.00 PLN
	// PGE Narodowy, Warsaw GA 250.00 PLN left: 98
}

// Which module handles which message type is what the modules subscribe
// as they are wired: the in-process bus delivers by it, and so do the
// JetStream consumers when the modules run in separate processes
// (Config.Modules, Config.JetStream), each module's consumer receiving
// its types.
func ExampleApp_HandledTypes() {
	store, err := sqlite.OpenMemory(context.Background(), sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), PasswordCost: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(a.Modules())
	fmt.Println(a.HandledTypes()["finance"])
	_, err = app.ParseModules("orders,billing")
	fmt.Println(errors.Is(err, app.ErrUnknownModule))
	// Output:
	// [concerts carts reservations orders finance tickets users]
	// [finance.CreditDue finance.InvoiceDue finance.PaymentTimedOut finance.RefundPayment finance.RequestPayment finance.ReverseCapture]
	// true
}
