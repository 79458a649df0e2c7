package reservations_test

import (
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/examples/ticketing/reservations"
)

func registry(t *testing.T) *es.Registry {
	t.Helper()
	reg := es.NewRegistry()
	if err := reservations.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// expiry makes the specs of the expiry process, one per test.
var expiry = estest.ForProcess(mustRegister(es.NewRegistry()), reservations.Expiry())

func mustRegister(reg *es.Registry) *es.Registry {
	if err := reservations.Register(reg); err != nil {
		panic(err)
	}
	return reg
}

// The spec clock starts at 2026-01-01 09:00 UTC.
var specStart = time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)

func heldFor(d time.Duration) reservations.SeatsReserved {
	return reservations.SeatsReserved{ConcertID: "c1", ReservationID: "r1", UserID: "u1",
		Seats: map[string]int{"vip": 2}, ExpiresAt: specStart.Add(d)}
}

func TestAReservationSchedulesItsExpiry(t *testing.T) {
	expiry.Given(t).
		When(heldFor(15*time.Minute)).
		ThenNothingSent().
		ThenScheduled(15*time.Minute, reservations.ReservationTimedOut{ConcertID: "c1", ReservationID: "r1"})
}

func TestAnUnconfirmedReservationExpiresWhenItsHoldRunsOut(t *testing.T) {
	expiry.Given(t, heldFor(15*time.Minute)).
		WhenTimeElapses(15 * time.Minute).
		Then(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNoDeadlines()
}

func TestNothingExpiresBeforeTheHoldRunsOut(t *testing.T) {
	expiry.Given(t, heldFor(15*time.Minute)).
		WhenTimeElapses(14 * time.Minute).
		ThenNothingSent()
}

func TestAConfirmedReservationCancelsItsExpiry(t *testing.T) {
	expiry.Given(t, heldFor(15*time.Minute), reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"}).
		WhenTimeElapses(time.Hour).
		ThenNothingSent().
		ThenNoDeadlines()
}

func TestACancelledReservationCancelsItsExpiry(t *testing.T) {
	expiry.Given(t, heldFor(15*time.Minute)).
		When(reservations.ReservationCancelled{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}}).
		ThenNothingSent().
		ThenNoDeadlines().
		ThenState("r1", reservations.ExpiryState{ConcertID: "c1", ReservationID: "r1", Done: true})
}

func TestATimeoutDeliveredTwiceExpiresOnce(t *testing.T) {
	expiry.Given(t, heldFor(time.Minute), reservations.ReservationTimedOut{ConcertID: "c1", ReservationID: "r1"}).
		When(reservations.ReservationTimedOut{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothingSent()
}

func TestEventSchemas(t *testing.T) {
	estest.GoldenSchema(t, registry(t), "testdata/events")
}
