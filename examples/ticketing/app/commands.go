package app

import (
	"context"
	"errors"
	"fmt"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/users"
)

// ErrSoldOut is reservations.ErrSoldOut, for callers of the app.
var ErrSoldOut = reservations.ErrSoldOut

// CreateConcert creates a concert and opens its ticket inventory in one
// atomic append to "concert-<ID>" and "inventory-<ID>", both expecting no
// stream. Why atomic rather than an event handler: the workshop design
// fills availability asynchronously from ConcertCreated, so for a while a
// concert is on sale without seats, and a failure in between leaves it so
// for good. One append makes the two facts one. The time of the command is
// the app's clock's.
func (a *App) CreateConcert(ctx context.Context, commandID string, c concerts.CreateConcert) error {
	c.At = a.cfg.Clock.Now()
	return a.decideConcertAndInventory(ctx, commandID, c.ConcertID, c,
		reservations.OpenInventory{ConcertID: c.ConcertID, Capacity: c.Capacity})
}

// UpdateTicketTypes changes prices in the concert and capacities in the
// inventory in one append, each with the version it was decided on: the
// inventory refuses a capacity below the seats reserved, and then nothing
// changes.
func (a *App) UpdateTicketTypes(ctx context.Context, commandID string, c concerts.UpdateTicketTypes) error {
	var inv reservations.Command
	if len(c.Capacity) > 0 {
		inv = reservations.ChangeCapacity{ConcertID: c.ConcertID, Capacity: c.Capacity}
	}
	return a.decideConcertAndInventory(ctx, commandID, c.ConcertID, c, inv)
}

// CancelConcert cancels a concert and closes its sales in one append,
// which also sends orders.ConcertCancelled: every order of the concert is
// cancelled, paid ones refunded and their tickets voided (the orders
// module's compensation). Without an outbox, only the concert and its
// sales close.
func (a *App) CancelConcert(ctx context.Context, commandID string, c concerts.CancelConcert) error {
	_, err := a.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
		if _, err := es.DecideOn(ctx, d, concerts.Decider(), concerts.Stream(c.ConcertID), concerts.Command(c)); err != nil {
			return err
		}
		if _, err := reservations.Decide(ctx, d, reservations.CloseInventory{ConcertID: c.ConcertID}); err != nil {
			return err
		}
		if a.outbox == nil {
			return nil
		}
		return d.Send(es.Send{Message: orders.ConcertCancelled{ConcertID: c.ConcertID, Reason: c.Reason}, Key: c.ConcertID})
	})
	return err
}

// decideConcertAndInventory decides cmd on a concert and inv (unless nil)
// on its inventory, each against the version it loaded, and appends both
// in one go.
func (a *App) decideConcertAndInventory(ctx context.Context, commandID, concertID string, cmd concerts.Command, inv reservations.Command) error {
	_, err := a.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
		if _, err := es.DecideOn(ctx, d, concerts.Decider(), concerts.Stream(concertID), cmd); err != nil || inv == nil {
			return err
		}
		_, err := reservations.Decide(ctx, d, inv)
		return err
	})
	return err
}

// AddToCart adds tickets to the user's cart with a snapshot of the
// concert's name and the ticket type's current price. Only a concert on
// sale by the app's clock is added (concerts.Concert.OnSale): not one
// cancelled or started.
func (a *App) AddToCart(ctx context.Context, commandID, userID, concertID, ticketType string, quantity int) error {
	return a.addToCart(ctx, commandID, -1, userID, concertID, ticketType, quantity)
}

// addToCart is AddToCart on the cart's version expected, or on the newest
// if expected is negative.
func (a *App) addToCart(ctx context.Context, commandID string, expected int64, userID, concertID, ticketType string, quantity int) error {
	c, _, err := a.Concerts.Load(ctx, concerts.Stream(concertID))
	if err != nil {
		return err
	}
	if err := c.OnSale(a.cfg.Clock.Now()); err != nil {
		return err
	}
	tt, ok := c.TicketType(ticketType)
	if !ok {
		return fmt.Errorf("%w: %q", concerts.ErrUnknownTicketType, ticketType)
	}
	cmd := carts.AddItem{UserID: userID, ConcertID: concertID, ConcertName: c.Name, TicketType: ticketType, Quantity: quantity, UnitPrice: tt.Price}
	if expected < 0 {
		_, err = a.Carts.Handle(ctx, commandID, carts.Stream(userID), cmd)
	} else {
		_, err = a.Carts.HandleExpecting(ctx, commandID, carts.Stream(userID), expected, cmd)
	}
	return err
}

// Reserve holds seats until the app's clock plus the hold, if the concert
// has not started by that clock: the reservation's stream and the
// concert's inventory change in one append (see reservations.Decide),
// which also expects the concert's version it read the start from. A retry
// with the same command ID holds seats once; a reservation ID is used once.
func (a *App) Reserve(ctx context.Context, commandID string, r reservations.Reserve) error {
	_, err := a.decideReservations(ctx, commandID, r.ConcertID, func(ctx context.Context, d *es.Decision) error {
		_, err := a.decideReserve(ctx, d, r)
		return err
	})
	return err
}

// decideReserve decides r within d at the app's clock, with the hold and
// the concert's start. The concert, whose start the inventory does not
// keep, is loaded into the decision: a start moved meanwhile makes the
// append conflict, and the seats are decided again on the new start.
func (a *App) decideReserve(ctx context.Context, d *es.Decision, r reservations.Reserve) ([]any, error) {
	c, err := es.Load(ctx, d, concerts.Decider(), concerts.Stream(r.ConcertID))
	if err != nil {
		return nil, err
	}
	r.At = a.cfg.Clock.Now()
	r.ExpiresAt, r.StartsAt = r.At.Add(a.cfg.Hold), c.StartsAt
	return reservations.Decide(ctx, d, r)
}

// ConfirmReservation keeps a reservation's seats; its expiry deadline is
// cancelled. Only the reservation's stream changes. (Orders confirm their
// seats through the order process.)
func (a *App) ConfirmReservation(ctx context.Context, commandID, concertID, reservationID string) error {
	return a.decideReservation(ctx, commandID, "", reservations.ConfirmReservation{ConcertID: concertID, ReservationID: reservationID})
}

// decideReservation decides cmd with reservations.Decide; queueFor is the
// concert whose inventory cmd changes ("" if none).
func (a *App) decideReservation(ctx context.Context, commandID, queueFor string, cmd reservations.Command) error {
	_, err := a.decideReservations(ctx, commandID, queueFor, func(ctx context.Context, d *es.Decision) error {
		_, err := reservations.Decide(ctx, d, cmd)
		return err
	})
	return err
}

// RegisterUser creates an account: the user's stream and the e-mail
// address's stream, both new, in one append, so that of any number of
// concurrent registrations of one address exactly one succeeds; the others
// get users.ErrEmailTaken. The password is hashed here and never leaves
// this function in the clear.
//
// Registration is idempotent by user ID: registering the same account
// again (same address, name, role and password) succeeds and changes
// nothing; registering the user ID with anything else fails with
// users.ErrUserExists.
func (a *App) RegisterUser(ctx context.Context, userID, email, name, password string, role users.Role) error {
	hash, err := users.HashPasswordCost(password, a.cfg.PasswordCost)
	if err != nil {
		return err
	}
	cmd := users.RegisterUser{UserID: userID, Email: email, Name: name, PasswordHash: hash, Role: role}
	// Deciding on a new user validates the command before anything is read.
	evs, err := users.Decider().Decide(users.User{}, cmd)
	if err != nil {
		return err
	}
	normalised := evs[0].(users.UserRegistered).Email
	res, err := a.multi.Handle(ctx, es.DeriveID("register/"+userID, 0), func(ctx context.Context, d *es.Decision) error {
		claim := users.EmailClaimed{Email: normalised, UserID: userID}
		if _, err := es.DecideOn(ctx, d, emailOwner, users.EmailStream(normalised), claim); err != nil {
			return err
		}
		_, err := es.DecideOn(ctx, d, users.Decider(), users.Stream(userID), users.Command(cmd))
		return err
	})
	var conflict *es.VersionConflictError
	switch {
	case errors.As(err, &conflict):
		// Still conflicting after every attempt: another registration
		// keeps taking the address or the ID.
		if conflict.StreamID == users.EmailStream(normalised) {
			return fmt.Errorf("%w: %s", users.ErrEmailTaken, normalised)
		}
		return fmt.Errorf("%w: %s", users.ErrUserExists, userID)
	case err != nil:
		return err
	case !res.Repeated:
		return nil
	}
	// The user ID was registered before: by this very registration (a
	// retry) only if the stored account is the one asked for.
	for _, s := range res.Streams {
		for _, e := range s.Events {
			if r, ok := e.(users.UserRegistered); ok && r.Email == normalised && r.Name == name && r.Role == role &&
				users.CheckPassword(r.PasswordHash, password) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s", users.ErrUserExists, userID)
}

// emailOwner is the decider of an e-mail address's stream: its state is
// the ID of the user who claimed the address, and a claim of a claimed
// address fails with users.ErrEmailTaken.
var emailOwner = es.Decider[string, users.EmailClaimed, users.EmailClaimed]{
	Initial: func() string { return "" },
	Decide: func(owner string, c users.EmailClaimed) ([]users.EmailClaimed, error) {
		if owner != "" {
			return nil, fmt.Errorf("%w: %s", users.ErrEmailTaken, c.Email)
		}
		return []users.EmailClaimed{c}, nil
	},
	Evolve: func(_ string, e users.EmailClaimed) string { return e.UserID },
}

// LogIn checks an e-mail address and password and returns the user. It
// reads the address's stream and the user's stream, not a read model, so a
// user can log in right after registering.
func (a *App) LogIn(ctx context.Context, email, password string) (users.User, error) {
	e, err := users.NormaliseEmail(email)
	if err != nil {
		return users.User{}, users.ErrInvalidCredentials
	}
	var userID string
	for ev, err := range a.cfg.Events.ReadStream(ctx, users.EmailStream(e), es.StreamQuery{}) {
		if err != nil {
			return users.User{}, err
		}
		v, err := a.reg.Decode(ev)
		if err != nil {
			return users.User{}, err
		}
		if c, ok := v.(users.EmailClaimed); ok {
			userID = c.UserID
		}
	}
	u := users.User{PasswordHash: a.noSuchUserHash}
	if userID != "" {
		if u, _, err = a.Users.Load(ctx, users.Stream(userID)); err != nil {
			return users.User{}, err
		}
	}
	// Compare even for an unknown address, so that the time taken does not
	// tell who has an account.
	if !users.CheckPassword(u.PasswordHash, password) || userID == "" {
		return users.User{}, users.ErrInvalidCredentials
	}
	return u, nil
}
