// Package reservations is the ticketing example's reservations module: the
// ticket inventory of each concert, reservations that hold seats, and the
// process that expires reservations nobody confirmed.
//
// The workshop design keeps ticket availability in an aggregate that shares
// its stream ID with the concert, fills it asynchronously from
// ConcertCreated (so a buyer can arrive before the seats do), and lets
// TicketLevelsUpdated overwrite the counts, forgetting the seats already
// reserved. Here instead:
//
//   - The inventory of a concert is one consistency boundary: the stream
//     "inventory-<concert ID>" (the concert itself is "concert-<ID>"). It
//     holds the capacity and the reserved seats per ticket type, and every
//     reservation, confirmation, cancellation and expiry is decided there
//     and appended with the exact version it was decided on, so no
//     interleaving of buyers can oversell.
//   - The inventory is opened in the same atomic append as the concert is
//     created (see package app), so it exists as soon as the concert does.
//   - A capacity change is decided against what is reserved and cannot go
//     below it.
//   - Capacities are bounded: at most [MaxCapacity] seats a ticket type and
//     [MaxConcertCapacity] a concert, so that no count or sum of seats (nor
//     of their prices, see package concerts) comes near overflowing.
//   - Reservations expire through a persisted deadline (see [Expiry]); the
//     release is idempotent, so a late or repeated deadline does no harm.
//   - "Only logged-in users may reserve" is a concern of the HTTP layer: the
//     decider only checks that a user ID is given.
package reservations

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"esgo.dev/es"
)

// Bounds on capacities: the seats of a ticket type, and of all the ticket
// types of a concert (the world's largest stadiums hold a few hundred
// thousand). Within them, seats and their sums fit any int.
const (
	MaxCapacity        = 1_000_000
	MaxConcertCapacity = 10_000_000
)

// Business errors of the inventory.
var (
	// ErrSoldOut: fewer seats are left than the reservation asks for.
	ErrSoldOut = errors.New("reservations: not enough seats left")
	// ErrNoInventory: the concert has no inventory (no such concert).
	ErrNoInventory = errors.New("reservations: the concert has no ticket inventory")
	// ErrInventoryExists: the inventory was opened already.
	ErrInventoryExists = errors.New("reservations: the inventory is open already")
	// ErrSalesClosed: the concert was cancelled; nothing more is sold.
	ErrSalesClosed = errors.New("reservations: sales are closed")
	// ErrUnknownTicketType: the concert has no such ticket type.
	ErrUnknownTicketType = errors.New("reservations: unknown ticket type")
	// ErrInvalidSeats: a seat count is not positive, or a capacity is
	// negative or over MaxCapacity, or a concert's over MaxConcertCapacity.
	ErrInvalidSeats = errors.New("reservations: invalid number of seats")
	// ErrCapacityBelowReserved: a capacity change would leave fewer seats
	// than are reserved.
	ErrCapacityBelowReserved = errors.New("reservations: capacity below the seats already reserved")
	// ErrUserRequired: a reservation needs the ID of the user making it.
	ErrUserRequired = errors.New("reservations: a reservation needs a user")
	// ErrUnknownReservation: no reservation with that ID.
	ErrUnknownReservation = errors.New("reservations: unknown reservation")
	// ErrReservationExists: the reservation ID is taken.
	ErrReservationExists = errors.New("reservations: reservation ID already used")
	// ErrReservationReleased: the reservation was cancelled or expired.
	ErrReservationReleased = errors.New("reservations: the reservation was released")
	// ErrReservationConfirmed: the reservation was confirmed and can no
	// longer be cancelled here (that is a refund, for the orders module).
	ErrReservationConfirmed = errors.New("reservations: the reservation is confirmed")
	// ErrNoExpiry: a reservation needs the time it expires.
	ErrNoExpiry = errors.New("reservations: a reservation needs an expiry time")
)

// Stream returns the inventory stream of a concert.
func Stream(concertID string) string { return "inventory-" + concertID }

// Command is a command for a concert's inventory.
type Command interface{ isCommand() }

// OpenInventory opens a concert's inventory with its capacity per ticket
// type.
type OpenInventory struct {
	ConcertID string         `json:"concert_id"`
	Capacity  map[string]int `json:"capacity"`
}

// ChangeCapacity sets new capacities for some ticket types.
type ChangeCapacity struct {
	ConcertID string         `json:"concert_id"`
	Capacity  map[string]int `json:"capacity"`
}

// CloseInventory stops sales (the concert was cancelled).
type CloseInventory struct {
	ConcertID string `json:"concert_id"`
}

// Reserve holds seats for a user until ExpiresAt.
type Reserve struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	UserID        string         `json:"user_id"`
	Seats         map[string]int `json:"seats"`
	ExpiresAt     time.Time      `json:"expires_at"`
}

// ConfirmReservation keeps the seats for good (the order was paid).
type ConfirmReservation struct {
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
}

// CancelReservation releases a reservation's seats at the user's request.
type CancelReservation struct {
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
}

// ExpireReservation releases a reservation's seats because it was not
// confirmed in time. It is also a message: the expiry process sends it.
type ExpireReservation struct {
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
}

func (OpenInventory) isCommand()      {}
func (ChangeCapacity) isCommand()     {}
func (CloseInventory) isCommand()     {}
func (Reserve) isCommand()            {}
func (ConfirmReservation) isCommand() {}
func (CancelReservation) isCommand()  {}
func (ExpireReservation) isCommand()  {}

// Event is an event of an inventory stream.
type Event interface{ isEvent() }

// InventoryOpened: the concert's seats are on sale.
type InventoryOpened struct {
	ConcertID string         `json:"concert_id"`
	Capacity  map[string]int `json:"capacity"`
}

// CapacityChanged: a ticket type's capacity is now Capacity.
type CapacityChanged struct {
	ConcertID  string `json:"concert_id"`
	TicketType string `json:"ticket_type"`
	Capacity   int    `json:"capacity"`
}

// InventoryClosed: no more seats are sold.
type InventoryClosed struct {
	ConcertID string `json:"concert_id"`
}

// SeatsReserved: seats are held for a user until ExpiresAt.
type SeatsReserved struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	UserID        string         `json:"user_id"`
	Seats         map[string]int `json:"seats"`
	ExpiresAt     time.Time      `json:"expires_at"`
}

// ReservationConfirmed: the seats are kept for good.
type ReservationConfirmed struct {
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
	UserID        string `json:"user_id"`
}

// ReservationCancelled: the user gave the seats back.
type ReservationCancelled struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	UserID        string         `json:"user_id"`
	Seats         map[string]int `json:"seats"`
}

// ReservationExpired: the reservation was not confirmed in time and its
// seats are free again.
type ReservationExpired struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	UserID        string         `json:"user_id"`
	Seats         map[string]int `json:"seats"`
}

func (InventoryOpened) isEvent()      {}
func (CapacityChanged) isEvent()      {}
func (InventoryClosed) isEvent()      {}
func (SeatsReserved) isEvent()        {}
func (ReservationConfirmed) isEvent() {}
func (ReservationCancelled) isEvent() {}
func (ReservationExpired) isEvent()   {}

// Status is where a reservation is in its life.
type Status string

// Reservation statuses.
const (
	Held      Status = "held"
	Confirmed Status = "confirmed"
	Cancelled Status = "cancelled"
	Expired   Status = "expired"
)

// Reservation is a reservation as the inventory knows it.
type Reservation struct {
	UserID    string
	Seats     map[string]int
	ExpiresAt time.Time
	Status    Status
}

// Inventory is the state of a concert's inventory.
type Inventory struct {
	ConcertID string
	Open      bool // opened and not closed
	Closed    bool
	Capacity  map[string]int
	// Reserved counts the seats held or confirmed, per ticket type.
	Reserved     map[string]int
	Reservations map[string]Reservation
}

// Left returns the seats of a ticket type that can still be reserved.
func (s Inventory) Left(ticketType string) int {
	return s.Capacity[ticketType] - s.Reserved[ticketType]
}

// Decider returns the decider of a concert's inventory.
func Decider() es.Decider[Inventory, Command, Event] {
	return es.Decider[Inventory, Command, Event]{
		Initial: func() Inventory { return Inventory{} },
		Decide:  decide,
		Evolve:  evolve,
	}
}

func decide(s Inventory, c Command) ([]Event, error) {
	existed := s.Capacity != nil
	switch c := c.(type) {
	case OpenInventory:
		if existed {
			return nil, ErrInventoryExists
		}
		if len(c.Capacity) == 0 {
			return nil, fmt.Errorf("%w: no ticket types", ErrInvalidSeats)
		}
		for t, n := range c.Capacity {
			if t == "" || n < 0 || n > MaxCapacity {
				return nil, fmt.Errorf("%w: %q: %d seats (a named ticket type has 0 to %d)", ErrInvalidSeats, t, n, MaxCapacity)
			}
		}
		if err := concertCapacity(c.Capacity, nil); err != nil {
			return nil, err
		}
		return []Event{InventoryOpened{ConcertID: c.ConcertID, Capacity: maps.Clone(c.Capacity)}}, nil
	case ChangeCapacity:
		if !existed {
			return nil, ErrNoInventory
		}
		if s.Closed {
			return nil, ErrSalesClosed
		}
		var out []Event
		for _, t := range slices.Sorted(maps.Keys(c.Capacity)) {
			n := c.Capacity[t]
			old, ok := s.Capacity[t]
			switch {
			case !ok:
				return nil, fmt.Errorf("%w: %q", ErrUnknownTicketType, t)
			case n < 0 || n > MaxCapacity:
				return nil, fmt.Errorf("%w: %s: %d seats (a ticket type has 0 to %d)", ErrInvalidSeats, t, n, MaxCapacity)
			case n < s.Reserved[t]:
				return nil, fmt.Errorf("%w: %s has %d reserved, capacity %d asked", ErrCapacityBelowReserved, t, s.Reserved[t], n)
			case n != old:
				out = append(out, CapacityChanged{ConcertID: c.ConcertID, TicketType: t, Capacity: n})
			}
		}
		if err := concertCapacity(s.Capacity, c.Capacity); err != nil {
			return nil, err
		}
		return out, nil
	case CloseInventory:
		if !existed {
			return nil, ErrNoInventory
		}
		if s.Closed {
			return nil, nil
		}
		//lint:ignore S1016 an event is not a converted command: their fields must stay free to differ
		return []Event{InventoryClosed{ConcertID: c.ConcertID}}, nil
	case Reserve:
		return reserve(s, c)
	case ConfirmReservation:
		r, err := reservation(s, c.ReservationID)
		if err != nil {
			return nil, err
		}
		switch r.Status {
		case Confirmed:
			return nil, nil
		case Cancelled, Expired:
			return nil, fmt.Errorf("%w: %s is %s", ErrReservationReleased, c.ReservationID, r.Status)
		}
		return []Event{ReservationConfirmed{ConcertID: c.ConcertID, ReservationID: c.ReservationID, UserID: r.UserID}}, nil
	case CancelReservation:
		r, err := reservation(s, c.ReservationID)
		if err != nil {
			return nil, err
		}
		switch r.Status {
		case Confirmed:
			return nil, ErrReservationConfirmed
		case Cancelled, Expired:
			return nil, nil // releasing is idempotent
		}
		return []Event{ReservationCancelled{ConcertID: c.ConcertID, ReservationID: c.ReservationID, UserID: r.UserID, Seats: maps.Clone(r.Seats)}}, nil
	case ExpireReservation:
		r, err := reservation(s, c.ReservationID)
		if err != nil {
			return nil, err
		}
		if r.Status != Held {
			// Confirmed first, or released already: a late or repeated
			// deadline changes nothing.
			return nil, nil
		}
		return []Event{ReservationExpired{ConcertID: c.ConcertID, ReservationID: c.ReservationID, UserID: r.UserID, Seats: maps.Clone(r.Seats)}}, nil
	}
	return nil, fmt.Errorf("reservations: unknown command %T", c)
}

// concertCapacity checks that the capacities, with the changes in place
// of theirs, add up to at most MaxConcertCapacity. It stops at the bound
// rather than summing past it, so no capacity, however large, wraps the
// sum around.
func concertCapacity(capacity, changes map[string]int) error {
	total := 0
	for t, n := range capacity {
		if m, ok := changes[t]; ok {
			n = m
		}
		if n > MaxConcertCapacity-total {
			return fmt.Errorf("%w: more than %d seats in all", ErrInvalidSeats, MaxConcertCapacity)
		}
		total += n
	}
	return nil
}

func reserve(s Inventory, c Reserve) ([]Event, error) {
	switch {
	case c.UserID == "":
		return nil, ErrUserRequired
	case s.Capacity == nil:
		return nil, ErrNoInventory
	case s.Closed:
		return nil, ErrSalesClosed
	case c.ExpiresAt.IsZero():
		return nil, ErrNoExpiry
	case len(c.Seats) == 0:
		return nil, fmt.Errorf("%w: no seats asked for", ErrInvalidSeats)
	}
	if _, ok := s.Reservations[c.ReservationID]; ok {
		return nil, fmt.Errorf("%w: %s", ErrReservationExists, c.ReservationID)
	}
	for _, t := range slices.Sorted(maps.Keys(c.Seats)) {
		n := c.Seats[t]
		if _, ok := s.Capacity[t]; !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTicketType, t)
		}
		if n <= 0 {
			return nil, fmt.Errorf("%w: %d %s", ErrInvalidSeats, n, t)
		}
		if n > s.Left(t) {
			return nil, fmt.Errorf("%w: %d %s asked, %d left", ErrSoldOut, n, t, s.Left(t))
		}
	}
	return []Event{SeatsReserved{
		ConcertID: c.ConcertID, ReservationID: c.ReservationID, UserID: c.UserID,
		Seats: maps.Clone(c.Seats), ExpiresAt: c.ExpiresAt.UTC(),
	}}, nil
}

func reservation(s Inventory, id string) (Reservation, error) {
	r, ok := s.Reservations[id]
	if !ok {
		return Reservation{}, fmt.Errorf("%w: %s", ErrUnknownReservation, id)
	}
	return r, nil
}

// evolve changes the state's maps in place: a fold is linear in the
// number of events. (It used to copy the maps it changed, which made
// loading an inventory of n reservations cost n², and a flash sale's
// thousands of loads of one inventory cost n³.) Every fold starts from
// Initial, whose maps InventoryOpened makes, so no two folds share a map.
func evolve(s Inventory, e Event) Inventory {
	switch e := e.(type) {
	case InventoryOpened:
		s.ConcertID, s.Open = e.ConcertID, true
		s.Capacity, s.Reserved = maps.Clone(e.Capacity), map[string]int{}
		s.Reservations = map[string]Reservation{}
	case CapacityChanged:
		s.Capacity[e.TicketType] = e.Capacity
	case InventoryClosed:
		s.Open, s.Closed = false, true
	case SeatsReserved:
		addSeats(s.Reserved, e.Seats, 1)
		s.Reservations[e.ReservationID] = Reservation{UserID: e.UserID, Seats: e.Seats, ExpiresAt: e.ExpiresAt, Status: Held}
	case ReservationConfirmed:
		setStatus(s.Reservations, e.ReservationID, Confirmed)
	case ReservationCancelled:
		addSeats(s.Reserved, e.Seats, -1)
		setStatus(s.Reservations, e.ReservationID, Cancelled)
	case ReservationExpired:
		addSeats(s.Reserved, e.Seats, -1)
		setStatus(s.Reservations, e.ReservationID, Expired)
	}
	return s
}

func addSeats(m, seats map[string]int, sign int) {
	for t, n := range seats {
		m[t] += sign * n
	}
}

func setStatus(m map[string]Reservation, id string, st Status) {
	r := m[id]
	r.Status = st
	m[id] = r
}
