package app_test

import (
	"context"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/concerts"
)

// A concert and its inventory are created in one append; a fan's cart
// snapshots the price; the read models follow once Run is going.
func ExampleApp() {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	a, err := app.New(app.Config{Events: store, ReadModels: store, Clock: estest.NewFakeClock(start)})
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
	if _, err := a.Checkout(ctx, es.NewID(), "ala"); err != nil {
		fmt.Println(err)
		return
	}
	if err := a.WaitForReadModels(ctx); err != nil {
		fmt.Println(err)
		return
	}
	d, _ := concerts.DetailsOf(ctx, store.DB(), "warsaw")
	fmt.Println(d.Venue, d.TicketTypes[0].Name, d.TicketTypes[0].Price, "left:", d.TicketTypes[0].Left)
	// Output: PGE Narodowy, Warsaw GA 250.00 PLN left: 98
}
