package app

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
)

// wireOrders makes the order and sales processes and subscribes them (the
// orders module's handlers), the seat adapter (the reservations module's
// answer to the order process) and the carts' RestoreItems.
func (a *App) wireOrders(ob es.Outbox) {
	pc := es.ProcessConfig{Clock: a.cfg.Clock, MaxAttempts: a.cfg.MaxAttempts}
	a.orders = es.NewProcessHandler(ob, a.reg, orders.Process(orders.Config{PaymentGrace: a.cfg.PaymentGrace}), pc)
	a.sales = es.NewProcessHandler(ob, a.reg, orders.SalesProcess(), pc)
	a.salesShards = es.NewProcessHandler(ob, a.reg, orders.SalesShardProcess(), pc)
	// Every message the order process correlates.
	for _, t := range []string{"orders.PlaceOrder", "orders.CancelOrder", "orders.SeatsHeld", "orders.SeatsUnavailable",
		"orders.SeatsConfirmed", "orders.SeatsLapsed", "orders.PaymentDue",
		"finance.PaymentSucceeded", "finance.PaymentFailed", "finance.PaymentRefunded",
		"tickets.TicketsIssued", "tickets.DeliveryFailed"} {
		a.routes.module("orders").Subscribe(t, a.orders.Handle)
	}
	a.routes.module("orders").Subscribe("orders.PlaceOrder", a.salesShards.Handle)
	a.routes.module("orders").Subscribe("orders.StopSales", a.salesShards.Handle)
	a.routes.module("orders").Subscribe("orders.ConcertCancelled", a.sales.Handle)
	res := a.routes.module("reservations")
	res.Subscribe("orders.ReserveSeats", a.reserveSeats)
	res.Subscribe("orders.ConfirmSeats", a.confirmSeats)
	res.Subscribe("orders.ReleaseSeats", a.releaseSeats)
	a.routes.module("carts").Subscribe("carts.RestoreItems", a.restoreItems)
}

// ChooseDelivery records how the tickets of the user's open cart are to
// be delivered: by e-mail, or by courier to a postal address.
func (a *App) ChooseDelivery(ctx context.Context, commandID, userID string, d carts.Delivery) error {
	_, err := a.Carts.Handle(ctx, commandID, carts.Stream(userID), carts.ChooseDelivery{UserID: userID, Delivery: d})
	return err
}

// OrderID returns the ID of the order that checkout commandID placed for a
// concert.
func OrderID(checkoutID, concertID string) string {
	return es.DeriveID("checkout/"+checkoutID+"/"+concertID, 0)
}

// Checkout confirms the user's cart and places its orders, one per concert
// in the cart (each concert has its own organizer and inventory), in one
// append: the cart's CartConfirmed and a PlaceOrder message per order go
// out together or not at all. It returns the order IDs by concert. The
// orders then run through the order process: seats, payment, tickets. An
// order that gets no seats is rejected and its lines come back into the
// cart; nothing is charged.
//
// The workshop design (and this example before the orders module)
// confirmed the cart and then reserved, so a sold-out concert left the
// buyer with an emptied cart and nothing else. Checkout is idempotent by
// command ID.
func (a *App) Checkout(ctx context.Context, commandID, userID string) (map[string]string, error) {
	return a.checkout(ctx, commandID, userID, -1)
}

// checkout is Checkout decided on the cart's version expected, or on the
// newest if expected is negative.
func (a *App) checkout(ctx context.Context, commandID, userID string, expected int64) (map[string]string, error) {
	if a.outbox == nil {
		return nil, errors.New("app: checkout needs an event store with an outbox")
	}
	if commandID == "" {
		commandID = es.NewID()
	}
	out := map[string]string{}
	_, err := a.multi.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
		stream := carts.Stream(userID)
		cart, err := es.Load(ctx, d, carts.Decider(), stream)
		if err != nil {
			return err
		}
		version, _ := d.Version(stream) // as loaded, before this decision's events
		events, err := es.DecideOn(ctx, d, carts.Decider(), stream, carts.Command(carts.ConfirmCart{UserID: userID}))
		if err != nil {
			return err
		}
		var confirmed carts.CartConfirmed
		for _, e := range events {
			if c, ok := e.(carts.CartConfirmed); ok {
				confirmed = c
			}
		}
		byConcert := map[string][]orders.Line{}
		for _, l := range confirmed.Lines {
			byConcert[l.ConcertID] = append(byConcert[l.ConcertID], orders.Line{TicketType: l.TicketType, ConcertName: l.ConcertName,
				Quantity: l.Quantity, UnitPrice: l.UnitPrice})
		}
		clear(out)
		for _, concertID := range slices.Sorted(maps.Keys(byConcert)) {
			id := OrderID(commandID, concertID)
			out[concertID] = id
			if cart.Delivery == nil {
				continue // a repeat: the orders were placed the first time
			}
			c, _, err := a.Concerts.Load(ctx, concerts.Stream(concertID))
			if err != nil {
				return err
			}
			if !c.Exists() {
				return fmt.Errorf("%w: %s", concerts.ErrNoConcert, concertID)
			}
			if err := d.Send(es.Send{Key: id, ID: es.DeriveID("checkout/"+commandID+"/place/"+concertID, 0),
				Message: orders.PlaceOrder{OrderID: id, UserID: userID, CartNo: confirmed.CartNo, ConcertID: concertID,
					OrganizerID: c.OrganizerID, Lines: byConcert[concertID], Delivery: orders.TicketDelivery(*cart.Delivery)}}); err != nil {
				return err
			}
		}
		// Decided on the version the client saw, or not at all. The append
		// expects the version loaded above, so a writer after that load
		// makes the next attempt find another version. Checked last, so
		// that a repeat still fills out its orders (a repeat is answered
		// as handled whatever this returns).
		if expected >= 0 && version != expected {
			return &es.VersionConflictError{StreamID: stream, Expected: es.Exact(expected), Actual: version}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Order returns the state of an order, as its process sees it. An order
// is known once the relay delivered its PlaceOrder, a moment after
// Checkout: until then Order returns orders.ErrNoOrder.
func (a *App) Order(ctx context.Context, orderID string) (orders.Order, error) {
	if a.orders == nil {
		return orders.Order{}, fmt.Errorf("%w: %s", orders.ErrNoOrder, orderID)
	}
	o, err := a.orders.State(ctx, orderID)
	if err == nil && o.Status == "" {
		err = fmt.Errorf("%w: %s", orders.ErrNoOrder, orderID)
	}
	return o, err
}

// CancelOrder cancels the user's unpaid order: its held seats are
// released. A paid order cannot be cancelled by the buyer
// (orders.ErrTooLateToCancel). The command is handled by the order
// process at once, with the command ID as the message ID, so a retry
// cancels once.
func (a *App) CancelOrder(ctx context.Context, commandID, userID, orderID, reason string) error {
	o, err := a.Order(ctx, orderID)
	if err != nil {
		return err
	}
	if o.UserID != userID {
		return fmt.Errorf("%w: %s", orders.ErrNoOrder, orderID) // not telling others' orders apart from none
	}
	m, err := es.NewMessage(a.reg, orderID, orders.CancelOrder{OrderID: orderID, Reason: reason})
	if err != nil {
		return err
	}
	if commandID != "" {
		m.ID = commandID
	}
	m.Metadata = es.MetadataFrom(ctx)
	return a.orders.Handle(ctx, m)
}

// reserveSeats answers the order process's ReserveSeats with the
// reservations module: SeatsHeld, written with the reservation and the
// inventory's count in one append, or SeatsUnavailable, written in an
// append that expects the inventory's and the concert's versions it was
// decided on. Seats are unavailable when they are sold out, sales are
// closed, or the concert has started by the app's clock; the order is then
// rejected and its lines go back to the cart. The message ID is the
// command ID, so a redelivered request holds seats once.
func (a *App) reserveSeats(ctx context.Context, m es.Message) error {
	v, err := es.DecodeMessage(a.reg, m)
	if err != nil {
		return err
	}
	r := v.(orders.ReserveSeats)
	_, err = a.decideReservations(ctx, m.ID, r.ConcertID, func(ctx context.Context, d *es.Decision) error {
		events, err := a.decideReserve(ctx, d,
			reservations.Reserve{ConcertID: r.ConcertID, ReservationID: r.ReservationID, UserID: r.UserID, Seats: r.Seats})
		if reason, refused := refusal(err); refused {
			return d.Send(es.Send{Key: r.OrderID, ID: es.DeriveID(m.ID+"/unavailable", 0),
				Message: orders.SeatsUnavailable{OrderID: r.OrderID, ReservationID: r.ReservationID, Reason: reason}})
		}
		if err != nil {
			return err
		}
		for _, e := range events {
			if h, ok := e.(reservations.SeatsReserved); ok {
				return d.Send(es.Send{Key: r.OrderID, ID: es.DeriveID(m.ID+"/held", 0),
					Message: orders.SeatsHeld{OrderID: r.OrderID, ReservationID: r.ReservationID, ExpiresAt: h.ExpiresAt}})
			}
		}
		return nil
	})
	return err
}

// refusal tells the inventory's reasons to turn a reservation down, in
// words for the buyer, from other errors.
func refusal(err error) (string, bool) {
	switch {
	case errors.Is(err, reservations.ErrSoldOut):
		return "sold out", true
	case errors.Is(err, reservations.ErrSalesClosed):
		return "sales are closed", true
	case errors.Is(err, reservations.ErrConcertStarted):
		return "the concert has started", true
	case errors.Is(err, reservations.ErrNoInventory), errors.Is(err, reservations.ErrUnknownTicketType),
		errors.Is(err, reservations.ErrInvalidSeats), errors.Is(err, reservations.ErrUserRequired),
		errors.Is(err, reservations.ErrNoReservationID):
		return err.Error(), true
	}
	return "", false
}

// confirmSeats answers ConfirmSeats: SeatsConfirmed, or SeatsLapsed when
// the hold ran out and the seats were released first. Only the
// reservation's stream changes: the inventory counts its seats already.
func (a *App) confirmSeats(ctx context.Context, m es.Message) error {
	v, err := es.DecodeMessage(a.reg, m)
	if err != nil {
		return err
	}
	c := v.(orders.ConfirmSeats)
	_, err = a.decideReservations(ctx, m.ID, "", func(ctx context.Context, d *es.Decision) error {
		_, err := reservations.Decide(ctx, d, reservations.ConfirmReservation{ConcertID: c.ConcertID, ReservationID: c.ReservationID})
		if errors.Is(err, reservations.ErrReservationReleased) {
			return d.Send(es.Send{Key: c.OrderID, ID: es.DeriveID(m.ID+"/lapsed", 0),
				Message: orders.SeatsLapsed{OrderID: c.OrderID, ReservationID: c.ReservationID}})
		}
		if err != nil {
			return err
		}
		return d.Send(es.Send{Key: c.OrderID, ID: es.DeriveID(m.ID+"/confirmed", 0),
			Message: orders.SeatsConfirmed{OrderID: c.OrderID, ReservationID: c.ReservationID}})
	})
	return err
}

// releaseSeats frees an order's held seats: the reservation is cancelled
// and its seats given back to the inventory in one append. Seats already
// free stay so; confirmed seats are not released here (an order cancels
// confirmed seats only with its concert, whose inventory is closed).
func (a *App) releaseSeats(ctx context.Context, m es.Message) error {
	v, err := es.DecodeMessage(a.reg, m)
	if err != nil {
		return err
	}
	r := v.(orders.ReleaseSeats)
	err = a.decideReservation(ctx, m.ID, r.ConcertID, reservations.CancelReservation{ConcertID: r.ConcertID, ReservationID: r.ReservationID})
	if errors.Is(err, reservations.ErrReservationConfirmed) || errors.Is(err, reservations.ErrUnknownReservation) {
		a.cfg.Logger.InfoContext(ctx, "app: seats not released", "order", r.OrderID, "reservation", r.ReservationID, "why", err)
		return nil
	}
	return err
}

// restoreItems puts a rejected order's lines back into the buyer's cart.
func (a *App) restoreItems(ctx context.Context, m es.Message) error {
	v, err := es.DecodeMessage(a.reg, m)
	if err != nil {
		return err
	}
	r := v.(carts.RestoreItems)
	_, err = a.Carts.Handle(ctx, m.ID, carts.Stream(r.UserID), r)
	return err
}
