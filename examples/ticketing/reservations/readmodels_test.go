package reservations_test

import (
	"context"
	"database/sql"
	"testing"

	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/examples/ticketing/reservations"
)

// lifecycle is a sale as the module stores it: counts in the inventory's
// stream, each reservation in its own.
func lifecycle() []any {
	return []any{
		estest.InStream("inventory-c1", opened()),
		estest.InStream("reservation-r1", reserved("r1", "u1", map[string]int{"standing": 2})),
		estest.InStream("inventory-c1", taken("r1", map[string]int{"standing": 2})),
		estest.InStream("reservation-r2", reserved("r2", "u1", map[string]int{"vip": 1, "standing": 1})),
		estest.InStream("inventory-c1", taken("r2", map[string]int{"vip": 1, "standing": 1})),
		estest.InStream("reservation-r3", reserved("r3", "u2", map[string]int{"standing": 4})),
		estest.InStream("inventory-c1", taken("r3", map[string]int{"standing": 4})),
		estest.InStream("reservation-r2", reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r2", UserID: "u1"}),
		estest.InStream("reservation-r1", reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"standing": 2}}),
		estest.InStream("inventory-c1", freed("r1", map[string]int{"standing": 2})),
	}
}

func TestUserReservationsShowEachReservationsStatus(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(reservations.UserReservationsProjection(reg)), func(ctx context.Context, db *sql.DB) ([]reservations.UserReservation, error) {
		return reservations.UserReservations(ctx, db, "u1")
	})
	estest.Projection(t, reg, rm).Given(lifecycle()...).Redelivered().AppliedTwice().
		Then([]reservations.UserReservation{
			{ReservationID: "r1", ConcertID: "c1", Seats: map[string]int{"standing": 2}, Status: reservations.Expired, ExpiresAt: expires},
			{ReservationID: "r2", ConcertID: "c1", Seats: map[string]int{"vip": 1, "standing": 1}, Status: reservations.Confirmed, ExpiresAt: expires},
		})
}

func TestConcertReservationsCountHeldAndConfirmedSeats(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(reservations.ConcertReservationsProjection(reg)), func(ctx context.Context, db *sql.DB) (reservations.ConcertReservations, error) {
		return reservations.ConcertReservationsOf(ctx, db, "c1")
	})
	estest.Projection(t, reg, rm).Given(lifecycle()...).Redelivered().AppliedTwice().
		Then(reservations.ConcertReservations{ConcertID: "c1",
			Capacity:  map[string]int{"standing": 10, "vip": 2},
			Held:      map[string]int{"standing": 4},
			Confirmed: map[string]int{"vip": 1, "standing": 1},
			Active: []reservations.ConcertReservation{
				{ReservationID: "r2", UserID: "u1", Seats: map[string]int{"vip": 1, "standing": 1}, Status: reservations.Confirmed},
				{ReservationID: "r3", UserID: "u2", Seats: map[string]int{"standing": 4}, Status: reservations.Held},
			}})
}

func TestTheSeatsLeftAreTheCapacityLessTheSeatsHeldAndConfirmed(t *testing.T) {
	reg := registry(t)
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(reservations.ConcertReservationsProjection(reg)), func(ctx context.Context, db *sql.DB) (map[string]int, error) {
		c, err := reservations.ConcertReservationsOf(ctx, db, "c1")
		return map[string]int{"standing": c.Left("standing"), "vip": c.Left("vip")}, err
	})
	events := append(lifecycle(), estest.InStream("inventory-c1", reservations.CapacityChanged{ConcertID: "c1", TicketType: "vip", Capacity: 5}))
	estest.Projection(t, reg, rm).Given(events...).Redelivered().AppliedTwice().
		// standing: 10 less r2's 1 (confirmed) and r3's 4 (held); r1 expired.
		Then(map[string]int{"standing": 5, "vip": 4})
}
