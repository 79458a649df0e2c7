package reservations

import (
	"time"

	"esgo.dev/es"
)

// ExpiryName is the name of the expiry process: its instances' streams are
// "expiry-<reservation ID>".
const ExpiryName = "expiry"

// ReservationTimedOut is the expiry process's deadline: delivered back to
// the process when a reservation's hold runs out.
type ReservationTimedOut struct {
	ConcertID     string `json:"concert_id"`
	ReservationID string `json:"reservation_id"`
}

// ExpiryEvent is an event of the expiry process's own streams.
type ExpiryEvent interface{ isExpiryEvent() }

// ExpiryScheduled: the process waits for the reservation to be confirmed
// until At.
type ExpiryScheduled struct {
	ConcertID     string    `json:"concert_id"`
	ReservationID string    `json:"reservation_id"`
	At            time.Time `json:"at"`
}

// ExpiryCancelled: the reservation was confirmed, cancelled or expired
// before its deadline; the deadline is cancelled.
type ExpiryCancelled struct {
	ReservationID string `json:"reservation_id"`
}

// ExpiryRequested: the deadline fired and the process asked the inventory
// to release the seats.
type ExpiryRequested struct {
	ReservationID string `json:"reservation_id"`
}

func (ExpiryScheduled) isExpiryEvent() {}
func (ExpiryCancelled) isExpiryEvent() {}
func (ExpiryRequested) isExpiryEvent() {}

// ExpiryState is the state of one reservation's expiry.
type ExpiryState struct {
	ConcertID     string
	ReservationID string
	// Waiting reports that the deadline is pending.
	Waiting bool
	// Done reports that the reservation no longer needs the process.
	Done bool
}

// TimeoutID returns the ID of a reservation's expiry deadline.
func TimeoutID(reservationID string) string {
	return es.DeadlineID(ExpiryName, reservationID, "timeout")
}

// Expiry is the process manager that expires reservations. It learns of a
// reservation from its SeatsReserved event (the events of the category
// [ReservationCategory] are fed to it by a subscription; see package app)
// and schedules a ReservationTimedOut
// deadline at the reservation's expiry. The deadline is persisted in the
// outbox with the process's state, so it fires after a restart. A
// confirmation, cancellation or expiry cancels it; when it fires first,
// the process sends ExpireReservation, which releases the reservation and
// frees its seats in the inventory (or does nothing, if the reservation
// was confirmed meanwhile: the reservation's stream, not the process, has
// the last word).
//
// The workshop design has an ExpireReservation command but nothing that
// sends it.
func Expiry() es.ProcessManager[ExpiryState, ExpiryEvent] {
	return es.ProcessManager[ExpiryState, ExpiryEvent]{
		Name: ExpiryName,
		Correlate: func(msg any) string {
			switch m := msg.(type) {
			case SeatsReserved:
				return m.ReservationID
			case ReservationConfirmed:
				return m.ReservationID
			case ReservationCancelled:
				return m.ReservationID
			case ReservationExpired:
				return m.ReservationID
			case ReservationTimedOut:
				return m.ReservationID
			}
			return ""
		},
		Initial: func() ExpiryState { return ExpiryState{} },
		React:   reactExpiry,
		Evolve: func(s ExpiryState, e ExpiryEvent) ExpiryState {
			switch e := e.(type) {
			case ExpiryScheduled:
				s.ConcertID, s.ReservationID, s.Waiting = e.ConcertID, e.ReservationID, true
			case ExpiryCancelled:
				s.Waiting, s.Done = false, true
			case ExpiryRequested:
				s.Waiting, s.Done = false, true
			}
			return s
		},
	}
}

func reactExpiry(s ExpiryState, msg any, _ time.Time) (es.Reaction[ExpiryEvent], error) {
	var none es.Reaction[ExpiryEvent]
	switch m := msg.(type) {
	case SeatsReserved:
		if s.Waiting || s.Done {
			return none, nil
		}
		return es.Reaction[ExpiryEvent]{
			Events: []ExpiryEvent{ExpiryScheduled{ConcertID: m.ConcertID, ReservationID: m.ReservationID, At: m.ExpiresAt}},
			Send: []es.Send{{
				Message:   ReservationTimedOut{ConcertID: m.ConcertID, ReservationID: m.ReservationID},
				DeliverAt: m.ExpiresAt,
				ID:        TimeoutID(m.ReservationID),
			}},
		}, nil
	case ReservationConfirmed, ReservationCancelled, ReservationExpired:
		if !s.Waiting {
			return none, nil
		}
		return es.Reaction[ExpiryEvent]{
			Events: []ExpiryEvent{ExpiryCancelled{ReservationID: s.ReservationID}},
			Cancel: []string{TimeoutID(s.ReservationID)},
		}, nil
	case ReservationTimedOut:
		if !s.Waiting {
			return none, nil // cancelled meanwhile, or delivered twice
		}
		return es.Reaction[ExpiryEvent]{
			Events: []ExpiryEvent{ExpiryRequested{ReservationID: m.ReservationID}},
			//lint:ignore S1016 a message is not a converted event: their fields must stay free to differ
			Send: []es.Send{{Message: ExpireReservation{ConcertID: m.ConcertID, ReservationID: m.ReservationID}}},
		}, nil
	}
	return none, nil
}
