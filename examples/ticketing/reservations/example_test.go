package reservations_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/reservations"
)

// The inventory stream decides every reservation with the exact version it
// read, so the last seat goes to one buyer only.
func ExampleDecider() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := es.NewRegistry()
	if err := reservations.Register(reg); err != nil {
		fmt.Println(err)
		return
	}
	h := es.NewCommandHandler(store, reg, reservations.Decider(), es.HandlerConfig{MaxAttempts: 50})
	stream := reservations.Stream("c1")
	if _, err := h.Handle(ctx, "", stream, reservations.OpenInventory{ConcertID: "c1", Capacity: map[string]int{"VIP": 1}}); err != nil {
		fmt.Println(err)
		return
	}
	expires := time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC)
	for _, user := range []string{"ala", "ola"} {
		_, err := h.Handle(ctx, "", stream, reservations.Reserve{ConcertID: "c1", ReservationID: "r-" + user, UserID: user,
			Seats: map[string]int{"VIP": 1}, ExpiresAt: expires})
		fmt.Println(user, errors.Is(err, reservations.ErrSoldOut))
	}
	// Output:
	// ala false
	// ola true
}
