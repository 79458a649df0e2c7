// Package orders is the ticketing example's orders module: the order
// (the TicketOrder decider) and the purchase process that runs it, from a
// checked-out cart to issued tickets, with a compensation for every way it
// can fail.
//
// # The purchase
//
// Checkout (package app) confirms the cart and sends PlaceOrder, one per
// concert in the cart, in one append. Each order is an instance of the
// order process ([Process]), in the stream "order-<order ID>":
//
//	PlaceOrder       → OrderPlaced          → ReserveSeats
//	SeatsHeld        → OrderSeatsHeld       → finance.RequestPayment, PaymentDue at the hold's end (+ grace)
//	PaymentSucceeded → PaymentCaptured      → ConfirmSeats (deadline cancelled)
//	SeatsConfirmed   → OrderSeatsConfirmed  → tickets.IssueTickets (with the delivery chosen in the cart)
//	TicketsIssued    → OrderCompleted
//
// Every arrow is a message through the outbox, written in the same
// transaction as the event that calls for it, and every message is handled
// idempotently: the process handler recognises a redelivered message by
// its ID, and the decider ignores an answer that is late, repeated or
// stray (a second PaymentSucceeded, a SeatsConfirmed for a cancelled
// order), so no step is lost or taken twice whatever the relay redelivers.
// The payment ID is derived from the order ID and finance is idempotent by
// it, so an order is charged once.
//
// # Compensations
//
//   - No seats (sold out, sales closed, the concert started):
//     OrderRejected, nothing is charged, and carts.RestoreItems puts the
//     order's lines back into the buyer's cart, to change and check out
//     again.
//   - Payment declined (PaymentFailed) or not captured by the PaymentDue
//     deadline: OrderCancelled with the reason, ReleaseSeats.
//   - Payment captured after the seats' hold ran out (ConfirmSeats answered
//     SeatsLapsed): HoldLapsed, and the order asks for seats again; if
//     they are gone, OrderCancelled with a refund (finance.RefundPayment).
//   - Payment captured after the order ended (the deadline fired first):
//     LatePaymentRefunded, a refund.
//   - The concert is cancelled: the sales process ([SalesProcess]), which
//     has seen every PlaceOrder of the concert (spread over the concert's
//     [SalesShards] shards, so that no stream holds a whole sale), sends
//     CancelOrder to each; a paid order is refunded and its tickets voided.
//   - Seats held for an order that no longer wants them (the answer came
//     after the order ended): HoldReleased, ReleaseSeats.
//
// # The hold: who releases seats
//
// A reservation's hold belongs to the reservations module: its expiry
// process releases the seats when the hold ends, whoever holds them. The
// order process does not replace it, and does not depend on it either:
// whenever an order gives up on held seats it sends ReleaseSeats itself,
// and the reservations module makes every release idempotent (it is
// decided on the reservation's own stream), so whichever comes
// first frees the seats and the other changes nothing. The order's
// PaymentDue deadline falls at the hold's end plus Config.PaymentGrace: a
// payment captured in the grace finds the seats released (SeatsLapsed)
// and the order tries to hold them again rather than turn away a buyer
// whose bank answered a few seconds late. Confirmation is decided by the
// reservations module, on the reservation's stream: a confirmation that
// comes after the expiry is refused there, never silently accepted.
//
// # One order per concert
//
// A cart that spans concerts checks out into one order per concert: each
// concert has its own organizer (who is paid), its own inventory (a
// consistency boundary of its own) and its own fate (it may be
// cancelled). A purchase of two concerts can then half succeed; the
// failed half comes back into the cart.
//
// # What the workshop design got wrong
//
// Its order is confirmed before anything is paid and reserved, its
// payment handler and reservation handler both listen to OrderCreated with
// nothing to order them, its CancelOrder "triggers" the cancellation of
// reservations and a refund through events nobody sends, and time-outs are
// a command with no deadline behind it. Here the order is a process with
// persisted state and deadlines, each compensation is an explicit event
// whose messages commit with it, and the refund of a late payment, the
// re-reservation after a lapsed hold and the concert's cancellation are
// paths the specs walk.
package orders
