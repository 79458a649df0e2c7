package tickets

import (
	"errors"

	"esgo.dev/es"
)

// Stored names of the delivery's own messages.
const (
	SendTicketType  = "tickets.SendTicket"
	CheckParcelType = "tickets.CheckParcel"
)

// Register registers the module's events and its own messages
// (SendTicket, CheckParcel) in reg under their stored names
// ("tickets.TicketIssued", ...). The public messages are registered by
// RegisterMessages, separately, so that a module that only talks to
// tickets can register them alone.
func Register(reg *es.Registry) error {
	return errors.Join(
		es.Register[TicketIssued](reg, "tickets.TicketIssued"),
		es.Register[TicketAdmitted](reg, "tickets.TicketAdmitted"),
		es.Register[TicketVoided](reg, "tickets.TicketVoided"),
		es.Register[TicketCodeReplaced](reg, "tickets.TicketCodeReplaced"),
		es.Register[OrderTicketsIssued](reg, "tickets.OrderTicketsIssued"),
		es.Register[OrderTicketsVoided](reg, "tickets.OrderTicketsVoided"),
		es.Register[DeliveryRequested](reg, "tickets.DeliveryRequested"),
		es.Register[TicketEmailed](reg, "tickets.TicketEmailed"),
		es.Register[ParcelShipped](reg, "tickets.ParcelShipped"),
		es.Register[ParcelDelivered](reg, "tickets.ParcelDelivered"),
		es.Register[ParcelLost](reg, "tickets.ParcelLost"),
		es.Register[DeliveryAttemptFailed](reg, "tickets.DeliveryAttemptFailed"),
		es.Register[DeliveryGaveUp](reg, "tickets.DeliveryGaveUp"),
		es.Register[DeliveryCancelled](reg, "tickets.DeliveryCancelled"),
		es.Register[SendTicket](reg, SendTicketType),
		es.Register[CheckParcel](reg, CheckParcelType),
	)
}
