package reservations_test

import (
	"fmt"
	"maps"
	"math"
	"testing"
	"time"

	"esgo.dev/es/estest"
	"esgo.dev/examples/ticketing/reservations"
)

// spec makes the specs of the inventory decider, one per test.
var spec = estest.ForDecider(reservations.Decider())

var expires = time.Date(2026, 5, 1, 20, 15, 0, 0, time.UTC)

func opened() reservations.InventoryOpened {
	return reservations.InventoryOpened{ConcertID: "c1", Capacity: map[string]int{"standing": 10, "vip": 2}}
}

func reserved(id, user string, seats map[string]int) reservations.SeatsReserved {
	return reservations.SeatsReserved{ConcertID: "c1", ReservationID: id, UserID: user, Seats: seats, ExpiresAt: expires}
}

func reserve(id, user string, seats map[string]int) reservations.Reserve {
	return reservations.Reserve{ConcertID: "c1", ReservationID: id, UserID: user, Seats: seats, ExpiresAt: expires}
}

func TestAnInventoryOpensWithItsCapacity(t *testing.T) {
	spec.Given(t).
		When(reservations.OpenInventory{ConcertID: "c1", Capacity: map[string]int{"standing": 10, "vip": 2}}).
		Then(opened())
}

func TestAnInventoryOpensOnce(t *testing.T) {
	spec.Given(t, opened()).
		When(reservations.OpenInventory{ConcertID: "c1", Capacity: map[string]int{"vip": 1}}).
		ThenError(reservations.ErrInventoryExists)
}

func TestSeatsCanBeReservedWhileTheyLast(t *testing.T) {
	spec.Given(t, opened()).
		When(reserve("r1", "u1", map[string]int{"standing": 3, "vip": 2})).
		Then(reserved("r1", "u1", map[string]int{"standing": 3, "vip": 2}))
}

func TestCannotReserveMoreSeatsThanAreLeft(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"standing": 8})).
		When(reserve("r2", "u2", map[string]int{"standing": 3})).
		ThenError(reservations.ErrSoldOut)
}

func TestReleasedSeatsCanBeReservedAgain(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}}).
		When(reserve("r2", "u2", map[string]int{"vip": 2})).
		Then(reserved("r2", "u2", map[string]int{"vip": 2}))
}

func TestAReservationNeedsAUserButNotALogin(t *testing.T) {
	spec.Given(t, opened()).
		When(reserve("r1", "", map[string]int{"vip": 1})).
		ThenError(reservations.ErrUserRequired)
}

func TestAReservationNeedsAnExpiry(t *testing.T) {
	spec.Given(t, opened()).
		When(reservations.Reserve{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 1}}).
		ThenError(reservations.ErrNoExpiry)
}

func TestCannotReserveForAConcertWithoutInventory(t *testing.T) {
	spec.Given(t).
		When(reserve("r1", "u1", map[string]int{"vip": 1})).
		ThenError(reservations.ErrNoInventory)
}

func TestCannotReserveAnUnknownTicketType(t *testing.T) {
	spec.Given(t, opened()).
		When(reserve("r1", "u1", map[string]int{"balcony": 1})).
		ThenError(reservations.ErrUnknownTicketType)
}

func TestCannotReserveZeroSeats(t *testing.T) {
	spec.Given(t, opened()).
		When(reserve("r1", "u1", map[string]int{"vip": 0})).
		ThenError(reservations.ErrInvalidSeats)
}

func TestAReservationIDIsUsedOnce(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 1})).
		When(reserve("r1", "u2", map[string]int{"vip": 1})).
		ThenError(reservations.ErrReservationExists)
}

func TestNothingIsReservedAfterSalesClose(t *testing.T) {
	spec.Given(t, opened(), reservations.InventoryClosed{ConcertID: "c1"}).
		When(reserve("r1", "u1", map[string]int{"vip": 1})).
		ThenError(reservations.ErrSalesClosed)
}

func TestClosingSalesTwiceChangesNothing(t *testing.T) {
	spec.Given(t, opened(), reservations.InventoryClosed{ConcertID: "c1"}).
		When(reservations.CloseInventory{ConcertID: "c1"}).
		ThenNothing()
}

func TestCapacityCannotGoBelowTheSeatsReserved(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"standing": 6})).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"standing": 5}}).
		ThenError(reservations.ErrCapacityBelowReserved)
}

func TestACapacityChangeKeepsTheSeatsReserved(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"standing": 6}),
		reservations.CapacityChanged{ConcertID: "c1", TicketType: "standing", Capacity: 7}).
		When(reserve("r2", "u2", map[string]int{"standing": 2})).
		ThenError(reservations.ErrSoldOut)
}

func TestCapacityOfAnUnknownTicketTypeCannotChange(t *testing.T) {
	spec.Given(t, opened()).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"balcony": 5}}).
		ThenError(reservations.ErrUnknownTicketType)
}

func TestAHeldReservationCanBeConfirmed(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 1})).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}).
		Then(reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"})
}

func TestAnExpiredReservationCannotBeConfirmed(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 1}),
		reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 1}}).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenError(reservations.ErrReservationReleased)
}

func TestAnUnknownReservationCannotBeConfirmed(t *testing.T) {
	spec.Given(t, opened()).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r9"}).
		ThenError(reservations.ErrUnknownReservation)
}

func TestAHeldReservationExpiresAndReleasesItsSeats(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2})).
		When(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		Then(reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}})
}

func TestExpiringTwiceReleasesOnce(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}}).
		When(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAConfirmedReservationDoesNotExpire(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"}).
		When(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAUserCanCancelAHeldReservation(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2})).
		When(reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"}).
		Then(reservations.ReservationCancelled{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}})
}

func TestCancellingTwiceReleasesOnce(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationCancelled{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}}).
		When(reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAConfirmedReservationCannotBeCancelledHere(t *testing.T) {
	spec.Given(t, opened(), reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"}).
		When(reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenError(reservations.ErrReservationConfirmed)
}

func TestReservedSeatsAreCountedPerTicketType(t *testing.T) {
	d := reservations.Decider()
	s := d.Fold(opened(), reserved("r1", "u1", map[string]int{"standing": 3}), reserved("r2", "u2", map[string]int{"standing": 2, "vip": 1}),
		reservations.ReservationCancelled{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"standing": 3}})
	if s.Left("standing") != 8 || s.Left("vip") != 1 {
		t.Fatalf("left: standing %d, vip %d; want 8, 1", s.Left("standing"), s.Left("vip"))
	}
}

func TestATicketTypeHoldsAtMostAMillionSeats(t *testing.T) {
	spec.Given(t).
		When(reservations.OpenInventory{ConcertID: "c1", Capacity: map[string]int{"standing": reservations.MaxCapacity + 1}}).
		ThenError(reservations.ErrInvalidSeats)
	spec.Given(t, opened()).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"vip": math.MaxInt}}).
		ThenError(reservations.ErrInvalidSeats)
}

func TestAConcertHoldsAtMostTenMillionSeats(t *testing.T) {
	full := map[string]int{}
	for i := range reservations.MaxConcertCapacity / reservations.MaxCapacity {
		full[fmt.Sprint("t", i)] = reservations.MaxCapacity
	}
	spec.Given(t).
		When(reservations.OpenInventory{ConcertID: "c1", Capacity: full}).
		Then(reservations.InventoryOpened{ConcertID: "c1", Capacity: full})
	over := maps.Clone(full)
	over["extra"] = 1
	spec.Given(t).
		When(reservations.OpenInventory{ConcertID: "c1", Capacity: over}).
		ThenError(reservations.ErrInvalidSeats)

	// One seat short of the bound: one seat more fits, two do not.
	almost := maps.Clone(full)
	almost["t0"], almost["extra"] = reservations.MaxCapacity-1, 0
	spec.Given(t, reservations.InventoryOpened{ConcertID: "c1", Capacity: almost}).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"extra": 1}}).
		Then(reservations.CapacityChanged{ConcertID: "c1", TicketType: "extra", Capacity: 1})
	spec.Given(t, reservations.InventoryOpened{ConcertID: "c1", Capacity: almost}).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"extra": 2}}).
		ThenError(reservations.ErrInvalidSeats)
	spec.Given(t, reservations.InventoryOpened{ConcertID: "c1", Capacity: almost}).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"t1": 0, "extra": 2}}).
		Then(reservations.CapacityChanged{ConcertID: "c1", TicketType: "extra", Capacity: 2},
			reservations.CapacityChanged{ConcertID: "c1", TicketType: "t1", Capacity: 0})
}
