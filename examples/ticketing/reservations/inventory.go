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
//     "inventory-<concert ID>" (the concert itself is "concert-<ID>"). Its
//     state is a few numbers per ticket type, the capacity and the seats
//     taken (held or confirmed), whatever the size of the sale ([Inventory]).
//   - Each reservation is a stream of its own, "reservation-<ID>": who
//     holds which seats until when, and whether the hold was confirmed,
//     cancelled or expired ([Reservation]).
//   - A reservation's commands are decided over both streams in one
//     decision ([Decide], run by an es.MultiStreamHandler) and appended in
//     one atomic append, each stream expecting the version it was decided
//     on. Reserve needs a new reservation and enough seats left:
//     SeatsReserved goes to the reservation, SeatsTaken to the inventory.
//     Cancelling or expiring a held reservation appends its release to the
//     reservation and SeatsFreed to the inventory. Confirming changes only
//     the reservation: its seats are counted already, so the confirmation
//     neither waits for nor contends with the concert's busiest stream.
//
// Why no interleaving oversells: seats are taken only by a decision on the
// inventory's state at the version it loaded, and the append expects that
// version, so of two buyers who saw the same seats left one appends and the
// other decides again on the new count. Seats come back only with the
// release of a held reservation, decided on the reservation's stream at its
// exact version and appended with the inventory's SeatsFreed: a
// reservation leaves Held once, so its seats are freed once, and a
// confirmation racing a cancellation or an expiry meets it on that same
// stream, where one of them loses and decides again (an expiry after a
// confirmation does nothing; a confirmation after an expiry is refused).
// So the seats taken are always the seats of the held and confirmed
// reservations, and never more than the capacity.
//
// Idempotency: the handler derives the event IDs from the command ID and
// the stream, and a command whose events a loaded stream already holds is
// a repeat that appends nothing, even when they lie before the
// inventory's snapshot. A reservation ID is used once
// ([ErrReservationExists]).
//
// Why the split: the inventory used to hold every reservation in its
// state, so a concert's stream and state grew with its sale, and every
// Reserve folded all of it: at 20,000 reservations a load took 169 ms on
// SQLite, too slow for a stadium's flash sale. Now the inventory's state
// is a handful of counts, its decider has a SnapshotName, and a handler
// with HandlerConfig.SnapshotEvery loads the latest snapshot and at most
// that many events after it, so Reserve costs the same at the first and
// the 40,000th reservation (see BenchmarkReserve). The reservation's own
// stream holds a few events. (Stores written with the earlier layout, all
// reservations in the inventory stream, are not read by this one: the
// example's stores are made afresh.)
//
// Also:
//
//   - The inventory is opened in the same atomic append as the concert is
//     created (see package app), so it exists as soon as the concert does.
//   - A capacity change is decided against the seats taken and cannot go
//     below them.
//   - Capacities are bounded: at most [MaxCapacity] seats a ticket type and
//     [MaxConcertCapacity] a concert, so that no count or sum of seats (nor
//     of their prices, see package concerts) comes near overflowing.
//   - Reservations expire through a persisted deadline (see [Expiry]); the
//     release is idempotent, so a late or repeated deadline does no harm.
//   - Seats are taken until the concert starts: a Reserve brings the start,
//     read from the concert in the same decision, and is refused from then on.
//   - "Only logged-in users may reserve" is a concern of the HTTP layer: the
//     decider only checks that a user ID is given.
package reservations

import (
	"context"
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
	// ErrNoExpiry: a reservation needs the time it is made and the time it
	// expires.
	ErrNoExpiry = errors.New("reservations: a reservation needs its time and an expiry time")
	// ErrConcertStarted: the concert has started, and no seat of it is
	// reserved any more.
	ErrConcertStarted = errors.New("reservations: the concert has started")
	// ErrNoReservationID: a reservation needs an ID (its stream's).
	ErrNoReservationID = errors.New("reservations: a reservation needs an ID")
)

// Stream returns the inventory stream of a concert.
func Stream(concertID string) string { return "inventory-" + concertID }

// ReservationCategory is the category of the reservations' streams.
const ReservationCategory = "reservation"

// ReservationStream returns the stream of a reservation.
func ReservationStream(reservationID string) string { return ReservationCategory + "-" + reservationID }

// Command is a command of the reservations module: decide it with
// [Decide].
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

// Reserve holds seats for a user until ExpiresAt. At is the time of the
// request. StartsAt is when the concert starts, as the concert says: from
// then on no seat is taken. The inventory does not keep the start, which
// belongs to the concert and may be moved; the caller loads the concert
// into the reservation's decision, so that a start moved meanwhile makes
// the append conflict (zero: the concert is not known, and the rule is not
// checked).
type Reserve struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	UserID        string         `json:"user_id"`
	Seats         map[string]int `json:"seats"`
	At            time.Time      `json:"at"`
	StartsAt      time.Time      `json:"starts_at,omitzero"`
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

// SeatsTaken: a reservation holds these seats; they are no longer for
// sale. Appended with the reservation's SeatsReserved.
type SeatsTaken struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	Seats         map[string]int `json:"seats"`
}

// SeatsFreed: a held reservation was cancelled or expired, and its seats
// are for sale again. Appended with the reservation's release.
type SeatsFreed struct {
	ConcertID     string         `json:"concert_id"`
	ReservationID string         `json:"reservation_id"`
	Seats         map[string]int `json:"seats"`
}

func (InventoryOpened) isEvent() {}
func (CapacityChanged) isEvent() {}
func (InventoryClosed) isEvent() {}
func (SeatsTaken) isEvent()      {}
func (SeatsFreed) isEvent()      {}

// ReservationEvent is an event of a reservation's stream.
type ReservationEvent interface{ isReservationEvent() }

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

func (SeatsReserved) isReservationEvent()        {}
func (ReservationConfirmed) isReservationEvent() {}
func (ReservationCancelled) isReservationEvent() {}
func (ReservationExpired) isReservationEvent()   {}

// Status is where a reservation is in its life.
type Status string

// Reservation statuses.
const (
	Held      Status = "held"
	Confirmed Status = "confirmed"
	Cancelled Status = "cancelled"
	Expired   Status = "expired"
)

// Reservation is the state of a reservation's stream. Status is empty
// while there is no such reservation.
type Reservation struct {
	ConcertID string
	UserID    string
	Seats     map[string]int
	ExpiresAt time.Time
	Status    Status
}

// Inventory is the state of a concert's inventory: counts only, so that
// it stays small (and its snapshots cheap) however many seats are sold.
type Inventory struct {
	ConcertID string
	Closed    bool
	Capacity  map[string]int
	// Reserved counts the seats taken, held or confirmed, per ticket type.
	Reserved map[string]int
}

// Left returns the seats of a ticket type that can still be reserved.
func (s Inventory) Left(ticketType string) int {
	return s.Capacity[ticketType] - s.Reserved[ticketType]
}

// InventorySnapshotVersion is the version of the inventory's snapshots
// (es.Decider.SnapshotVersion): raise it when Inventory or evolve change.
const InventorySnapshotVersion = 1

// Decider returns the decider of a concert's inventory. It decides the
// inventory's own commands (OpenInventory, ChangeCapacity, CloseInventory)
// and the inventory's half of Reserve; a Reserve decided on the inventory
// alone would take seats for a reservation that does not exist, so
// reservations are decided with [Decide]. Its state can be snapshotted,
// under the name "inventory".
func Decider() es.Decider[Inventory, Command, Event] {
	return es.Decider[Inventory, Command, Event]{
		Initial:         func() Inventory { return Inventory{} },
		Decide:          decide,
		Evolve:          evolve,
		SnapshotName:    "inventory",
		SnapshotVersion: InventorySnapshotVersion,
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
		return take(s, c)
	}
	return nil, fmt.Errorf("reservations: the inventory does not decide %T", c)
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

// take decides the inventory's half of a reservation: are the seats left,
// and is the concert yet to start?
func take(s Inventory, c Reserve) ([]Event, error) {
	switch {
	case s.Capacity == nil:
		return nil, ErrNoInventory
	case s.Closed:
		return nil, ErrSalesClosed
	case !c.StartsAt.IsZero() && c.At.IsZero():
		return nil, ErrNoExpiry
	case !c.StartsAt.IsZero() && !c.At.Before(c.StartsAt):
		return nil, fmt.Errorf("%w: at %s", ErrConcertStarted, c.StartsAt.UTC().Format(time.RFC3339))
	case len(c.Seats) == 0:
		return nil, fmt.Errorf("%w: no seats asked for", ErrInvalidSeats)
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
	return []Event{SeatsTaken{ConcertID: c.ConcertID, ReservationID: c.ReservationID, Seats: maps.Clone(c.Seats)}}, nil
}

// evolve changes the state's maps in place: a fold is linear in the
// number of events. Every fold starts from Initial or from a decoded
// snapshot, whose maps InventoryOpened or the decoding made, so no two
// folds share a map.
func evolve(s Inventory, e Event) Inventory {
	switch e := e.(type) {
	case InventoryOpened:
		s.ConcertID = e.ConcertID
		s.Capacity, s.Reserved = maps.Clone(e.Capacity), map[string]int{}
	case CapacityChanged:
		s.Capacity[e.TicketType] = e.Capacity
	case InventoryClosed:
		s.Closed = true
	case SeatsTaken:
		addSeats(s.Reserved, e.Seats, 1)
	case SeatsFreed:
		addSeats(s.Reserved, e.Seats, -1)
	}
	return s
}

func addSeats(m, seats map[string]int, sign int) {
	for t, n := range seats {
		m[t] += sign * n
	}
}

// ReservationDecider returns the decider of a reservation's stream. It
// decides the reservation's half of Reserve (the ID is new, the request
// complete), ConfirmReservation, CancelReservation and ExpireReservation;
// the seats a reservation takes or frees are the inventory's, so
// reservations are decided with [Decide], over both streams.
func ReservationDecider() es.Decider[Reservation, Command, ReservationEvent] {
	return es.Decider[Reservation, Command, ReservationEvent]{
		Initial: func() Reservation { return Reservation{} },
		Decide:  decideReservation,
		Evolve:  evolveReservation,
	}
}

func decideReservation(r Reservation, c Command) ([]ReservationEvent, error) {
	switch c := c.(type) {
	case Reserve:
		switch {
		case c.ReservationID == "":
			return nil, ErrNoReservationID
		case r.Status != "":
			return nil, fmt.Errorf("%w: %s", ErrReservationExists, c.ReservationID)
		case c.UserID == "":
			return nil, ErrUserRequired
		case c.At.IsZero() || c.ExpiresAt.IsZero():
			return nil, ErrNoExpiry
		case len(c.Seats) == 0:
			return nil, fmt.Errorf("%w: no seats asked for", ErrInvalidSeats)
		}
		for t, n := range c.Seats {
			if n <= 0 {
				return nil, fmt.Errorf("%w: %d %s", ErrInvalidSeats, n, t)
			}
		}
		return []ReservationEvent{SeatsReserved{ConcertID: c.ConcertID, ReservationID: c.ReservationID, UserID: c.UserID,
			Seats: maps.Clone(c.Seats), ExpiresAt: c.ExpiresAt.UTC()}}, nil
	case ConfirmReservation:
		switch r.Status {
		case "":
			return nil, fmt.Errorf("%w: %s", ErrUnknownReservation, c.ReservationID)
		case Confirmed:
			return nil, nil
		case Cancelled, Expired:
			return nil, fmt.Errorf("%w: %s is %s", ErrReservationReleased, c.ReservationID, r.Status)
		}
		return []ReservationEvent{ReservationConfirmed{ConcertID: r.ConcertID, ReservationID: c.ReservationID, UserID: r.UserID}}, nil
	case CancelReservation:
		switch r.Status {
		case "":
			return nil, fmt.Errorf("%w: %s", ErrUnknownReservation, c.ReservationID)
		case Confirmed:
			return nil, ErrReservationConfirmed
		case Cancelled, Expired:
			return nil, nil // releasing is idempotent
		}
		return []ReservationEvent{ReservationCancelled{ConcertID: r.ConcertID, ReservationID: c.ReservationID, UserID: r.UserID, Seats: maps.Clone(r.Seats)}}, nil
	case ExpireReservation:
		switch r.Status {
		case "":
			return nil, fmt.Errorf("%w: %s", ErrUnknownReservation, c.ReservationID)
		case Held:
			return []ReservationEvent{ReservationExpired{ConcertID: r.ConcertID, ReservationID: c.ReservationID, UserID: r.UserID, Seats: maps.Clone(r.Seats)}}, nil
		}
		// Confirmed first, or released already: a late or repeated
		// deadline changes nothing.
		return nil, nil
	}
	return nil, fmt.Errorf("reservations: a reservation does not decide %T", c)
}

func evolveReservation(r Reservation, e ReservationEvent) Reservation {
	switch e := e.(type) {
	case SeatsReserved:
		r = Reservation{ConcertID: e.ConcertID, UserID: e.UserID, Seats: e.Seats, ExpiresAt: e.ExpiresAt, Status: Held}
	case ReservationConfirmed:
		r.Status = Confirmed
	case ReservationCancelled:
		r.Status = Cancelled
	case ReservationExpired:
		r.Status = Expired
	}
	return r
}

// Decide decides cmd within the multi-stream decision d, on the streams it
// concerns (see the package doc), and returns the events it recorded: the
// reservation's first, then the inventory's. On a repeated command it
// returns what the first handling appended. When it returns an error, it
// recorded nothing. Run it in an es.MultiStreamHandler:
//
//	h.Handle(ctx, commandID, func(ctx context.Context, d *es.Decision) error {
//		_, err := reservations.Decide(ctx, d, cmd)
//		return err
//	})
//
// Business errors come back as the deciders returned them.
func Decide(ctx context.Context, d *es.Decision, cmd Command) ([]any, error) {
	switch c := cmd.(type) {
	case OpenInventory:
		return onInventory(ctx, d, c.ConcertID, c, nil)
	case ChangeCapacity:
		return onInventory(ctx, d, c.ConcertID, c, nil)
	case CloseInventory:
		return onInventory(ctx, d, c.ConcertID, c, nil)
	case Reserve:
		return reserve(ctx, d, c)
	}
	id := reservationOf(cmd)
	if id == "" {
		return nil, fmt.Errorf("%w: %T", ErrNoReservationID, cmd)
	}
	evs, err := es.DecideOn(ctx, d, ReservationDecider(), ReservationStream(id), cmd)
	if err != nil {
		return nil, err
	}
	out := anys(evs)
	var freed *SeatsFreed
	for _, e := range evs {
		switch e := e.(type) {
		case ReservationCancelled:
			freed = &SeatsFreed{ConcertID: e.ConcertID, ReservationID: id, Seats: maps.Clone(e.Seats)}
		case ReservationExpired:
			freed = &SeatsFreed{ConcertID: e.ConcertID, ReservationID: id, Seats: maps.Clone(e.Seats)}
		}
	}
	if freed == nil {
		// Confirmed (the seats stay taken), or released before: the
		// inventory is not touched.
		return out, nil
	}
	// The release was decided on the reservation's stream at the version
	// it loaded: freeing its seats is not the inventory's to refuse, only
	// to record, in the same append.
	stream := Stream(freed.ConcertID)
	if _, err := es.Load(ctx, d, Decider(), stream); err != nil {
		return nil, err
	}
	if err := es.Record(d, stream, Event(*freed)); err != nil {
		return nil, err
	}
	return append(out, *freed), nil
}

// reserve decides a Reserve: the reservation must be new and complete and
// the seats left. The reservation's events are recorded only once the
// inventory took the seats, so that a refusal records nothing.
func reserve(ctx context.Context, d *es.Decision, c Reserve) ([]any, error) {
	if c.ReservationID == "" {
		return nil, ErrNoReservationID
	}
	stream := ReservationStream(c.ReservationID)
	r, err := es.Load(ctx, d, ReservationDecider(), stream)
	if err != nil {
		return nil, err
	}
	if r.Status != "" {
		// Either this command was handled before, and DecideOn returns
		// what it appended to each stream, or the ID is taken: an error.
		evs, err := es.DecideOn(ctx, d, ReservationDecider(), stream, Command(c))
		if err != nil {
			return nil, err
		}
		return onInventory(ctx, d, c.ConcertID, c, anys(evs))
	}
	evs, err := decideReservation(r, c)
	if err != nil {
		return nil, err
	}
	taken, err := onInventory(ctx, d, c.ConcertID, c, anys(evs))
	if err != nil {
		return nil, err
	}
	if err := es.Record(d, stream, evs...); err != nil {
		return nil, err
	}
	return taken, nil
}

// onInventory decides c on the concert's inventory and returns the events
// decided after before's.
func onInventory(ctx context.Context, d *es.Decision, concertID string, c Command, before []any) ([]any, error) {
	evs, err := es.DecideOn(ctx, d, Decider(), Stream(concertID), c)
	if err != nil {
		return nil, err
	}
	return append(before, anys(evs)...), nil
}

func anys[E any](evs []E) []any {
	out := make([]any, len(evs))
	for i, e := range evs {
		out[i] = e
	}
	return out
}

// reservationOf returns the reservation a reservation command is about.
func reservationOf(cmd Command) string {
	switch c := cmd.(type) {
	case ConfirmReservation:
		return c.ReservationID
	case CancelReservation:
		return c.ReservationID
	case ExpireReservation:
		return c.ReservationID
	}
	return ""
}
