package tickets_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/courier"
)

// The orders process asks for a paid order's tickets with a message keyed
// by the order ID; the buyer's delivery choice travels with it.
func ExampleIssueTickets() {
	reg := es.NewRegistry()
	if err := tickets.RegisterMessages(reg); err != nil {
		panic(err)
	}
	m, err := es.NewMessage(reg, "order-1", tickets.IssueTickets{
		OrderID: "order-1", UserID: "ola", ConcertID: "warsaw",
		Seats:    map[string]int{"Standing": 2},
		Delivery: tickets.Delivery{Method: tickets.ByEmail, Email: "ola@example.com"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(m.Type, m.Key)
	// Output: tickets.IssueTickets order-1
}

// A gate admits a ticket once; a second scan, at any gate, is told where
// and when the ticket was used.
func ExampleService_Admit() {
	ctx := context.Background()
	reg := es.NewRegistry()
	if err := errors.Join(tickets.Register(reg), tickets.RegisterMessages(reg)); err != nil {
		panic(err)
	}
	store := memory.New(memory.Config{})
	clock := estest.NewFakeClock(time.Date(2026, 7, 12, 18, 30, 0, 0, time.UTC))
	svc, err := tickets.NewService(tickets.Config{Outbox: store, Registry: reg, Clock: clock,
		Mailer:  tickets.MailerFunc(func(context.Context, tickets.Mail) (string, error) { return "", nil }),
		Courier: courier.NewFake(courier.FakeConfig{}).Client()})
	if err != nil {
		panic(err)
	}
	bus := es.NewBus()
	svc.Subscribe(bus)
	// The relay would deliver this from the outbox.
	m, _ := es.NewMessage(reg, "order-1", tickets.IssueTickets{OrderID: "order-1", UserID: "ola", ConcertID: "warsaw",
		Seats: map[string]int{"GA": 1}, Delivery: tickets.Delivery{Method: tickets.ByEmail, Email: "ola@example.com"}})
	if err := bus.Publish(ctx, m); err != nil {
		panic(err)
	}
	t, _ := svc.Ticket(ctx, tickets.TicketID("order-1", "GA", 1))

	a, err := svc.Admit(ctx, es.NewID(), tickets.Scan{Code: t.Code, ConcertID: "warsaw", Gate: "north-1"})
	fmt.Println(a.Gate, a.At.Format(time.Kitchen), err)
	clock.Advance(5 * time.Minute)
	_, err = svc.Admit(ctx, es.NewID(), tickets.Scan{Code: t.Code, ConcertID: "warsaw", Gate: "south-2"})
	var used *tickets.AlreadyUsedError
	fmt.Println(errors.As(err, &used), used.Gate, used.At.Format(time.Kitchen))
	// Output:
	// north-1 6:30PM <nil>
	// true north-1 6:30PM
}
