package web_test

import (
	"context"
	"errors"
	"time"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/users"
)

// purchase is an order placed by a checkout.
type purchase struct {
	OrderID    string
	CheckoutID string // the checkout's command ID: the purchase's correlation ID
	Buyer      *user
}

// buyTickets has an organizer create a concert and a customer buy n of
// its tickets by e-mail, through the app's methods; it waits until the
// order is completed and the read models have caught up.
func (e *env) buyTickets(n int) purchase {
	e.t.Helper()
	ctx := context.Background()
	organizer := e.newUser("organizer", users.Organizer)
	buyer := e.newUser("buyer", users.Customer)
	concertID := es.NewID()
	err := e.App.CreateConcert(ctx, es.NewID(), concerts.CreateConcert{ConcertID: concertID, Name: "Explorer Night",
		Artist: "Dawid Podsiadło", StartsAt: time.Now().AddDate(0, 3, 0), Venue: "PGE Narodowy, Warsaw",
		OrganizerID: organizer.ID, TicketTypes: []concerts.TicketType{{Name: "GA", Price: money.Money{Amount: 25000, Currency: "PLN"}}},
		Capacity: map[string]int{"GA": 10}})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.App.AddToCart(ctx, es.NewID(), buyer.ID, concertID, "GA", n); err != nil {
		e.t.Fatal(err)
	}
	if err := e.App.ChooseDelivery(ctx, es.NewID(), buyer.ID, carts.Delivery{Method: carts.ByEmail, Email: buyer.Email}); err != nil {
		e.t.Fatal(err)
	}
	p := purchase{CheckoutID: es.NewID(), Buyer: buyer}
	placed, err := e.App.Checkout(ctx, p.CheckoutID, buyer.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	p.OrderID = placed[concertID]
	e.waitFor(func() bool {
		o, err := e.App.Order(ctx, p.OrderID)
		if err != nil && !errors.Is(err, orders.ErrNoOrder) {
			e.t.Fatal(err)
		}
		return err == nil && o.Status == orders.Completed
	})
	if err := e.App.WaitForReadModels(ctx); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// waitFor polls cond until it holds, failing the test after a generous
// while (a bound against hanging, not a timing assertion).
func (e *env) waitFor(cond func() bool) {
	e.t.Helper()
	for range 3000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("condition not met after 30s")
}
