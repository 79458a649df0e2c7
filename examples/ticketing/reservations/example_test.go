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

// A reservation is decided over its own stream and the concert's
// inventory, each at the exact version it read, so the last seat goes to
// one buyer only.
func ExampleDecide() {
	ctx := context.Background()
	store := memory.New(memory.Config{})
	reg := es.NewRegistry()
	if err := reservations.Register(reg); err != nil {
		fmt.Println(err)
		return
	}
	h := es.NewMultiStreamHandler(store, reg, es.HandlerConfig{MaxAttempts: 50, SnapshotEvery: 100})
	decide := func(cmd reservations.Command) error {
		_, err := h.Handle(ctx, es.NewID(), func(ctx context.Context, d *es.Decision) error {
			_, err := reservations.Decide(ctx, d, cmd)
			return err
		})
		return err
	}
	if err := decide(reservations.OpenInventory{ConcertID: "c1", Capacity: map[string]int{"VIP": 1}}); err != nil {
		fmt.Println(err)
		return
	}
	expires := time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC)
	for _, user := range []string{"ala", "ola"} {
		err := decide(reservations.Reserve{ConcertID: "c1", ReservationID: "r-" + user, UserID: user,
			Seats: map[string]int{"VIP": 1}, At: expires.Add(-15 * time.Minute), ExpiresAt: expires})
		fmt.Println(user, errors.Is(err, reservations.ErrSoldOut))
	}
	// Ala's hold runs out: the seat is ola's to take.
	if err := decide(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r-ala"}); err != nil {
		fmt.Println(err)
		return
	}
	err := decide(reservations.Reserve{ConcertID: "c1", ReservationID: "r-ola-2", UserID: "ola",
		Seats: map[string]int{"VIP": 1}, At: expires.Add(-15 * time.Minute), ExpiresAt: expires})
	fmt.Println("ola again", errors.Is(err, reservations.ErrSoldOut))
	// Output:
	// ala false
	// ola true
	// ola again false
}
