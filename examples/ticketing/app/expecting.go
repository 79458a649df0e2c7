package app

import (
	"context"
	"errors"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/reservations"
)

// UpdateTicketTypesAt is UpdateTicketTypes decided only on version
// expected of the concert's stream, the version a client saw (an HTTP
// If-Match): when the concert is at another version, or moves on before
// the append, it returns a *es.VersionConflictError and changes nothing,
// rather than applying the client's prices to a concert it has not seen.
// A retry of the same command is a repeat, whatever the version now.
func (a *App) UpdateTicketTypesAt(ctx context.Context, commandID string, expected int64, c concerts.UpdateTicketTypes) error {
	if expected < 0 {
		return errors.New("app: a negative expected version")
	}
	stream := concerts.Stream(c.ConcertID)
	_, err := a.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
		if _, err := es.Load(ctx, d, concerts.Decider(), stream); err != nil {
			return err
		}
		// The append expects the version loaded here, so a writer after
		// this load makes the next attempt find another version.
		if v, _ := d.Version(stream); v != expected {
			return &es.VersionConflictError{StreamID: stream, Expected: es.Exact(expected), Actual: v}
		}
		if _, err := es.DecideOn(ctx, d, concerts.Decider(), stream, concerts.Command(c)); err != nil || len(c.Capacity) == 0 {
			return err
		}
		_, err := es.DecideOn(ctx, d, reservations.Decider(), reservations.Stream(c.ConcertID),
			reservations.Command(reservations.ChangeCapacity{ConcertID: c.ConcertID, Capacity: c.Capacity}))
		return err
	})
	return err
}

// AddToCartAt is AddToCart decided only on version expected of the user's
// cart, the version a client saw (an HTTP If-Match): when the cart is at
// another version it returns a *es.VersionConflictError and changes
// nothing. A retry of the same command is a repeat, whatever the version
// now.
func (a *App) AddToCartAt(ctx context.Context, commandID string, expected int64, userID, concertID, ticketType string, quantity int) error {
	if expected < 0 {
		return errors.New("app: a negative expected version")
	}
	return a.addToCart(ctx, commandID, expected, userID, concertID, ticketType, quantity)
}

// CheckoutAt is Checkout decided only on version expected of the user's
// cart, the version a client saw (an HTTP If-Match): when the cart is at
// another version, or moves on before the append, it returns a
// *es.VersionConflictError and places no order, rather than buying a cart
// the client has not seen. A retry of the same command is a repeat,
// whatever the version now.
func (a *App) CheckoutAt(ctx context.Context, commandID string, expected int64, userID string) (map[string]string, error) {
	if expected < 0 {
		return nil, errors.New("app: a negative expected version")
	}
	return a.checkout(ctx, commandID, userID, expected)
}
