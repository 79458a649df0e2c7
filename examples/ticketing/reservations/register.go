package reservations

import (
	"errors"

	"esgo.dev/es"
)

// Register registers the module's events and messages in reg under their
// stored names ("reservations.SeatsReserved", ...): the inventories' and
// the reservations' events, then the expiry process's.
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[InventoryOpened](reg, "reservations.InventoryOpened"),
		es.Register[CapacityChanged](reg, "reservations.CapacityChanged"),
		es.Register[InventoryClosed](reg, "reservations.InventoryClosed"),
		es.Register[SeatsTaken](reg, "reservations.SeatsTaken"),
		es.Register[SeatsFreed](reg, "reservations.SeatsFreed"),
		es.Register[SeatsReserved](reg, "reservations.SeatsReserved"),
		es.Register[ReservationConfirmed](reg, "reservations.ReservationConfirmed"),
		es.Register[ReservationCancelled](reg, "reservations.ReservationCancelled"),
		es.Register[ReservationExpired](reg, "reservations.ReservationExpired"),
		// The expiry process's events, its deadline and the command it sends.
		es.Register[ExpiryScheduled](reg, "reservations.ExpiryScheduled"),
		es.Register[ExpiryCancelled](reg, "reservations.ExpiryCancelled"),
		es.Register[ExpiryRequested](reg, "reservations.ExpiryRequested"),
		es.Register[ReservationTimedOut](reg, "reservations.ReservationTimedOut"),
		es.Register[ExpireReservation](reg, "reservations.ExpireReservation"),
	)
}
