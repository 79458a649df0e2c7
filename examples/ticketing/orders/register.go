package orders

import (
	"errors"

	"esgo.dev/es"
)

// Register registers the module's events and messages in reg under their
// stored names ("orders.OrderPlaced", ...). The order process also
// handles the finance and tickets modules' messages and sends the carts
// module's RestoreItems: register those modules' messages too.
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[OrderPlaced](reg, "orders.OrderPlaced"),
		es.Register[OrderSeatsHeld](reg, "orders.OrderSeatsHeld"),
		es.Register[OrderRejected](reg, "orders.OrderRejected"),
		es.Register[PaymentCaptured](reg, "orders.PaymentCaptured"),
		es.Register[HoldLapsed](reg, "orders.HoldLapsed"),
		es.Register[OrderSeatsConfirmed](reg, "orders.OrderSeatsConfirmed"),
		es.Register[OrderCompleted](reg, "orders.OrderCompleted"),
		es.Register[OrderCancelled](reg, "orders.OrderCancelled"),
		es.Register[LatePaymentRefunded](reg, "orders.LatePaymentRefunded"),
		es.Register[HoldReleased](reg, "orders.HoldReleased"),
		es.Register[RefundCompleted](reg, "orders.RefundCompleted"),
		es.Register[TicketDeliveryFailed](reg, "orders.TicketDeliveryFailed"),
		es.Register[SaleRecorded](reg, "orders.SaleRecorded"),
		es.Register[SalesStopped](reg, "orders.SalesStopped"),
		// Messages.
		es.Register[PlaceOrder](reg, "orders.PlaceOrder"),
		es.Register[CancelOrder](reg, "orders.CancelOrder"),
		es.Register[ConcertCancelled](reg, "orders.ConcertCancelled"),
		es.Register[StopSales](reg, "orders.StopSales"),
		es.Register[ReserveSeats](reg, "orders.ReserveSeats"),
		es.Register[ConfirmSeats](reg, "orders.ConfirmSeats"),
		es.Register[ReleaseSeats](reg, "orders.ReleaseSeats"),
		es.Register[SeatsHeld](reg, "orders.SeatsHeld"),
		es.Register[SeatsUnavailable](reg, "orders.SeatsUnavailable"),
		es.Register[SeatsConfirmed](reg, "orders.SeatsConfirmed"),
		es.Register[SeatsLapsed](reg, "orders.SeatsLapsed"),
		es.Register[PaymentDue](reg, "orders.PaymentDue"),
	)
}
