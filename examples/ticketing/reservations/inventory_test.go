package reservations_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/memory"
	"esgo.dev/examples/ticketing/reservations"
)

// spec makes the specs of the inventory decider, one per test; booking
// those of a reservation's decider.
var (
	spec    = estest.ForDecider(reservations.Decider())
	booking = estest.ForDecider(reservations.ReservationDecider())
)

var (
	madeAt  = time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC)
	expires = madeAt.Add(15 * time.Minute)
)

func opened() reservations.InventoryOpened {
	return reservations.InventoryOpened{ConcertID: "c1", Capacity: map[string]int{"standing": 10, "vip": 2}}
}

func reserved(id, user string, seats map[string]int) reservations.SeatsReserved {
	return reservations.SeatsReserved{ConcertID: "c1", ReservationID: id, UserID: user, Seats: seats, ExpiresAt: expires}
}

func taken(id string, seats map[string]int) reservations.SeatsTaken {
	return reservations.SeatsTaken{ConcertID: "c1", ReservationID: id, Seats: seats}
}

func freed(id string, seats map[string]int) reservations.SeatsFreed {
	return reservations.SeatsFreed{ConcertID: "c1", ReservationID: id, Seats: seats}
}

func reserve(id, user string, seats map[string]int) reservations.Reserve {
	return reservations.Reserve{ConcertID: "c1", ReservationID: id, UserID: user, Seats: seats, At: madeAt, ExpiresAt: expires}
}

// The inventory: counts per ticket type.

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

func TestSeatsCanBeTakenWhileTheyLast(t *testing.T) {
	spec.Given(t, opened()).
		When(reserve("r1", "u1", map[string]int{"standing": 3, "vip": 2})).
		Then(taken("r1", map[string]int{"standing": 3, "vip": 2}))
}

func TestCannotReserveMoreSeatsThanAreLeft(t *testing.T) {
	spec.Given(t, opened(), taken("r1", map[string]int{"standing": 8})).
		When(reserve("r2", "u2", map[string]int{"standing": 3})).
		ThenError(reservations.ErrSoldOut)
}

func TestFreedSeatsCanBeReservedAgain(t *testing.T) {
	spec.Given(t, opened(), taken("r1", map[string]int{"vip": 2}), freed("r1", map[string]int{"vip": 2})).
		When(reserve("r2", "u2", map[string]int{"vip": 2})).
		Then(taken("r2", map[string]int{"vip": 2}))
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

func TestNothingIsReservedAfterSalesClose(t *testing.T) {
	spec.Given(t, opened(), reservations.InventoryClosed{ConcertID: "c1"}).
		When(reserve("r1", "u1", map[string]int{"vip": 1})).
		ThenError(reservations.ErrSalesClosed)
}

func TestSeatsAreTakenUntilTheConcertStarts(t *testing.T) {
	r := reserve("r1", "u1", map[string]int{"vip": 1})
	r.StartsAt = madeAt.Add(time.Second)
	spec.Given(t, opened()).When(r).Then(taken("r1", map[string]int{"vip": 1}))
	for _, startsAt := range []time.Time{madeAt, madeAt.Add(-time.Hour)} {
		r.StartsAt = startsAt
		spec.Given(t, opened()).When(r).ThenError(reservations.ErrConcertStarted)
	}
	r.At = time.Time{}
	spec.Given(t, opened()).When(r).ThenError(reservations.ErrNoExpiry)
}

func TestClosingSalesTwiceChangesNothing(t *testing.T) {
	spec.Given(t, opened(), reservations.InventoryClosed{ConcertID: "c1"}).
		When(reservations.CloseInventory{ConcertID: "c1"}).
		ThenNothing()
}

func TestCapacityCannotGoBelowTheSeatsReserved(t *testing.T) {
	spec.Given(t, opened(), taken("r1", map[string]int{"standing": 6})).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"standing": 5}}).
		ThenError(reservations.ErrCapacityBelowReserved)
}

func TestACapacityChangeKeepsTheSeatsReserved(t *testing.T) {
	spec.Given(t, opened(), taken("r1", map[string]int{"standing": 6}),
		reservations.CapacityChanged{ConcertID: "c1", TicketType: "standing", Capacity: 7}).
		When(reserve("r2", "u2", map[string]int{"standing": 2})).
		ThenError(reservations.ErrSoldOut)
}

func TestCapacityOfAnUnknownTicketTypeCannotChange(t *testing.T) {
	spec.Given(t, opened()).
		When(reservations.ChangeCapacity{ConcertID: "c1", Capacity: map[string]int{"balcony": 5}}).
		ThenError(reservations.ErrUnknownTicketType)
}

func TestTheInventoryKeepsCountsNotReservations(t *testing.T) {
	spec.Given(t, opened(), taken("r1", map[string]int{"standing": 3}), taken("r2", map[string]int{"standing": 2, "vip": 1}),
		freed("r1", map[string]int{"standing": 3})).
		When(reservations.CloseInventory{ConcertID: "c1"}).
		ThenState(reservations.Inventory{ConcertID: "c1", Closed: true, Capacity: map[string]int{"standing": 10, "vip": 2},
			Reserved: map[string]int{"standing": 2, "vip": 1}})
}

func TestTheInventoryDoesNotDecideAReservationsLife(t *testing.T) {
	spec.Given(t, opened()).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenErrorMatches(func(err error) bool { return err != nil })
}

// A reservation: its own stream.

func TestAReservationIsHeldForAUser(t *testing.T) {
	booking.Given(t).
		When(reserve("r1", "u1", map[string]int{"vip": 2})).
		Then(reserved("r1", "u1", map[string]int{"vip": 2}))
}

func TestAReservationNeedsAUserButNotALogin(t *testing.T) {
	booking.Given(t).
		When(reserve("r1", "", map[string]int{"vip": 1})).
		ThenError(reservations.ErrUserRequired)
}

func TestAReservationNeedsAnExpiry(t *testing.T) {
	booking.Given(t).
		When(reservations.Reserve{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 1}}).
		ThenError(reservations.ErrNoExpiry)
}

func TestAReservationNeedsItsTime(t *testing.T) {
	r := reserve("r1", "u1", map[string]int{"vip": 1})
	r.At = time.Time{}
	booking.Given(t).When(r).ThenError(reservations.ErrNoExpiry)
}

func TestAReservationNeedsSeats(t *testing.T) {
	booking.Given(t).
		When(reserve("r1", "u1", map[string]int{"vip": -1})).
		ThenError(reservations.ErrInvalidSeats)
}

func TestAReservationIDIsUsedOnce(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 1})).
		When(reserve("r1", "u2", map[string]int{"vip": 1})).
		ThenError(reservations.ErrReservationExists)
}

func TestAHeldReservationCanBeConfirmed(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 1})).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}).
		Then(reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"})
}

func TestConfirmingTwiceConfirmsOnce(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 1}), reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"}).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAnExpiredReservationCannotBeConfirmed(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 1}),
		reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 1}}).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenError(reservations.ErrReservationReleased)
}

func TestAnUnknownReservationCannotBeConfirmed(t *testing.T) {
	booking.Given(t).
		When(reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r9"}).
		ThenError(reservations.ErrUnknownReservation)
}

func TestAHeldReservationExpiresAndReleasesItsSeats(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 2})).
		When(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		Then(reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}})
}

func TestExpiringTwiceReleasesOnce(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationExpired{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}}).
		When(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAConfirmedReservationDoesNotExpire(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"}).
		When(reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAUserCanCancelAHeldReservation(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 2})).
		When(reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"}).
		Then(reservations.ReservationCancelled{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}})
}

func TestCancellingTwiceReleasesOnce(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationCancelled{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"vip": 2}}).
		When(reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenNothing()
}

func TestAConfirmedReservationCannotBeCancelledHere(t *testing.T) {
	booking.Given(t, reserved("r1", "u1", map[string]int{"vip": 2}),
		reservations.ReservationConfirmed{ConcertID: "c1", ReservationID: "r1", UserID: "u1"}).
		When(reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"}).
		ThenError(reservations.ErrReservationConfirmed)
}

// Both streams, decided together by Decide.

type module struct {
	t     *testing.T
	store *memory.Store
	h     *es.MultiStreamHandler
	inv   *es.CommandHandler[reservations.Inventory, reservations.Command, reservations.Event]
	res   *es.CommandHandler[reservations.Reservation, reservations.Command, reservations.ReservationEvent]
}

func newModule(t *testing.T, capacity map[string]int) *module {
	reg := registry(t)
	store := memory.New(memory.Config{})
	cfg := es.HandlerConfig{SnapshotEvery: 3, MaxAttempts: 200}
	m := &module{t: t, store: store, h: es.NewMultiStreamHandler(store, reg, cfg),
		inv: es.NewCommandHandler(store, reg, reservations.Decider(), cfg),
		res: es.NewCommandHandler(store, reg, reservations.ReservationDecider(), cfg)}
	if _, err := m.do("open", reservations.OpenInventory{ConcertID: "c1", Capacity: capacity}); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *module) do(commandID string, cmd reservations.Command) (es.MultiStreamResult, error) {
	return m.h.Handle(context.Background(), commandID, func(ctx context.Context, d *es.Decision) error {
		_, err := reservations.Decide(ctx, d, cmd)
		return err
	})
}

func (m *module) inventory() reservations.Inventory {
	s, _, err := m.inv.Load(context.Background(), reservations.Stream("c1"))
	if err != nil {
		m.t.Fatal(err)
	}
	return s
}

func (m *module) status(id string) reservations.Status {
	r, _, err := m.res.Load(context.Background(), reservations.ReservationStream(id))
	if err != nil {
		m.t.Fatal(err)
	}
	return r.Status
}

func TestAReservationTakesItsSeatsInOneAppend(t *testing.T) {
	m := newModule(t, map[string]int{"vip": 3})
	res, err := m.do("cmd-1", reserve("r1", "u1", map[string]int{"vip": 2}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Streams) != 2 || res.Streams[0].StreamID != "reservation-r1" || res.Streams[1].StreamID != "inventory-c1" {
		t.Fatalf("appended to %+v; want reservation-r1 and inventory-c1", res.Streams)
	}
	if _, err := m.do("cmd-2", reserve("r2", "u2", map[string]int{"vip": 2})); !errors.Is(err, reservations.ErrSoldOut) {
		t.Fatalf("got %v, want ErrSoldOut", err)
	}
	// A refused reservation wrote nothing, not even its own stream.
	if st := m.status("r2"); st != "" {
		t.Fatalf("refused reservation r2 is %q", st)
	}
	if _, err := m.do("cmd-3", reserve("r1", "u3", map[string]int{"vip": 1})); !errors.Is(err, reservations.ErrReservationExists) {
		t.Fatalf("got %v, want ErrReservationExists", err)
	}
	if inv := m.inventory(); inv.Reserved["vip"] != 2 {
		t.Fatalf("%d reserved, want 2", inv.Reserved["vip"])
	}
}

func TestAReservationRetriedWithItsCommandIDHoldsSeatsOnce(t *testing.T) {
	m := newModule(t, map[string]int{"vip": 10})
	for i := range 5 { // past a few snapshots of the inventory
		if _, err := m.do(es.NewID(), reserve(es.NewID(), "u", map[string]int{"vip": 1})); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			for range 3 {
				res, err := m.do("the-one", reserve("r1", "u1", map[string]int{"vip": 2}))
				if err != nil {
					t.Fatal(err)
				}
				if len(res.Streams) != 2 || len(res.Streams[0].Events) != 1 || len(res.Streams[1].Events) != 1 {
					t.Fatalf("result %+v; want one event on each stream", res)
				}
			}
		}
	}
	res, err := m.do("the-one", reserve("r1", "u1", map[string]int{"vip": 2}))
	if err != nil || !res.Repeated {
		t.Fatalf("repeat after snapshots: %+v, %v; want Repeated", res, err)
	}
	if inv := m.inventory(); inv.Reserved["vip"] != 7 {
		t.Fatalf("%d reserved, want 7", inv.Reserved["vip"])
	}
}

func TestAReleaseFreesTheSeatsOnce(t *testing.T) {
	m := newModule(t, map[string]int{"vip": 2})
	if _, err := m.do("", reserve("r1", "u1", map[string]int{"vip": 2})); err != nil {
		t.Fatal(err)
	}
	// The user cancels, the hold runs out and the cancellation is
	// retried: the seats come back once.
	for _, cmd := range []reservations.Command{
		reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"},
		reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"},
		reservations.CancelReservation{ConcertID: "c1", ReservationID: "r1"},
	} {
		if _, err := m.do("", cmd); err != nil {
			t.Fatal(err)
		}
	}
	if inv, st := m.inventory(), m.status("r1"); inv.Reserved["vip"] != 0 || st != reservations.Cancelled {
		t.Fatalf("%d reserved, r1 %s; want 0 and cancelled", inv.Reserved["vip"], st)
	}
	if _, err := m.do("", reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"}); !errors.Is(err, reservations.ErrReservationReleased) {
		t.Fatalf("confirming a cancelled reservation: %v", err)
	}
}

func TestAConfirmationTouchesOnlyTheReservation(t *testing.T) {
	m := newModule(t, map[string]int{"vip": 2})
	if _, err := m.do("", reserve("r1", "u1", map[string]int{"vip": 2})); err != nil {
		t.Fatal(err)
	}
	res, err := m.do("", reservations.ConfirmReservation{ConcertID: "c1", ReservationID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Streams) != 1 || res.Streams[0].StreamID != "reservation-r1" {
		t.Fatalf("appended to %+v; want reservation-r1 only", res.Streams)
	}
	// An expiry after the confirmation frees nothing.
	if _, err := m.do("", reservations.ExpireReservation{ConcertID: "c1", ReservationID: "r1"}); err != nil {
		t.Fatal(err)
	}
	if inv := m.inventory(); inv.Reserved["vip"] != 2 {
		t.Fatalf("%d reserved, want 2", inv.Reserved["vip"])
	}
}

func TestReleasingAnUnknownReservationFails(t *testing.T) {
	m := newModule(t, map[string]int{"vip": 2})
	if _, err := m.do("", reservations.CancelReservation{ConcertID: "c1", ReservationID: "r9"}); !errors.Is(err, reservations.ErrUnknownReservation) {
		t.Fatalf("got %v, want ErrUnknownReservation", err)
	}
}

// Buyers reserve while others cancel, expire and confirm the same
// reservations, all at once, with nothing queueing them but the streams'
// expected versions: the inventory's count stays the seats of the held
// and confirmed reservations, never above the capacity.
func TestRacingReservationsAndReleasesNeitherOversellNorFreeTwice(t *testing.T) {
	m := newModule(t, map[string]int{"vip": 20})
	ids := make([]string, 60)
	for i := range ids {
		ids[i] = fmt.Sprint("r", i)
	}
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			_, err := m.do("", reserve(id, "u", map[string]int{"vip": 1 + i%2}))
			if err != nil && !errors.Is(err, reservations.ErrSoldOut) {
				t.Error(err)
			}
		})
		for j, cmd := range []reservations.Command{
			reservations.CancelReservation{ConcertID: "c1", ReservationID: id},
			reservations.ExpireReservation{ConcertID: "c1", ReservationID: id},
			reservations.ConfirmReservation{ConcertID: "c1", ReservationID: id},
		} {
			if (i+j)%3 == 0 {
				continue
			}
			wg.Go(func() {
				_, err := m.do("", cmd)
				if err != nil && !errors.Is(err, reservations.ErrUnknownReservation) && !errors.Is(err, reservations.ErrReservationReleased) &&
					!errors.Is(err, reservations.ErrReservationConfirmed) {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	taken := 0
	for i, id := range ids {
		r, _, err := m.res.Load(context.Background(), reservations.ReservationStream(id))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == reservations.Held || r.Status == reservations.Confirmed {
			taken += 1 + i%2
		}
	}
	if inv := m.inventory(); inv.Reserved["vip"] != taken || taken > 20 {
		t.Fatalf("the inventory counts %d taken, the reservations hold %d, of 20", inv.Reserved["vip"], taken)
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
