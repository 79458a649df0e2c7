// Package concerts is the ticketing example's concert catalogue: concerts
// with their artist, date, venue and ticket types with prices.
//
// Corrections to the workshop design this comes from:
//
//   - Prices are [money.Money] (integer minor units and an ISO 4217 code),
//     not decimals; all ticket types of a concert share one currency. The
//     first version of ConcertCreated stored decimal strings in PLN; it is
//     upcast on read (see [Register]).
//   - The concert does not count seats. Capacity and reservations belong
//     to the concert's inventory, a stream of its own in package
//     reservations, opened in the same atomic append as the concert (see
//     package app): the design's availability aggregate shared the
//     concert's stream ID, was filled asynchronously, and was overwritten
//     by ticket-type updates, forgetting the seats already reserved.
//   - Time comes in the command (At), so the rule "a concert is announced
//     for the future" is decidable without a clock. Tickets are sold until
//     the concert starts ([Concert.OnSale]); the inventory is told the
//     start with each reservation (package reservations).
//   - The design records every edit of a concert as ConcertUpdated, a copy
//     of the form: a reader cannot tell a typo fixed in the name from a
//     concert moved to another day, which ticket holders must be told.
//     Here UpdateConcert records what changed, as one event per intent:
//     [ConcertRenamed], [ArtistChanged], [ConcertRescheduled] (with the
//     former start) and [ConcertMoved]. [ConcertUpdated] is no longer
//     recorded; streams written before keep it, and Evolve and the read
//     models still apply it.
//   - Ticket types are named once each, with at most [MaxTicketTypeName]
//     bytes of text without control characters.
//   - A ticket's price is at most [MaxPrice] minor units. With the
//     inventory's bounds on seats (package reservations: a million per
//     ticket type, ten million per concert) and a cart's on quantities
//     (package carts: ten per line), a concert's sales are at most 10^15
//     minor units, so no cart total, order or sum of an organizer's
//     revenue comes near overflowing int64 (about 9.2·10^18).
package concerts

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/money"
)

// MaxTicketTypeName is the longest ticket type name, in bytes. A name is
// a key in a cart line's URL path (see package web), which takes at most
// this much: every name a concert accepts can be put in a cart, changed
// and removed.
const MaxTicketTypeName = 100

// MaxPrice is the dearest ticket, in minor units: 1,000,000.00 in the
// concert's currency. The bound keeps every sum of prices far from
// overflowing (see the package documentation).
const MaxPrice = 100_000_000

// Business errors of the concerts module.
var (
	// ErrConcertExists: a concert with that ID was created already.
	ErrConcertExists = errors.New("concerts: concert already exists")
	// ErrNoConcert: no concert with that ID.
	ErrNoConcert = errors.New("concerts: no such concert")
	// ErrConcertCancelled: the concert is cancelled and cannot change.
	ErrConcertCancelled = errors.New("concerts: the concert is cancelled")
	// ErrInvalidConcert: a required field is missing or malformed.
	ErrInvalidConcert = errors.New("concerts: invalid concert")
	// ErrInThePast: the concert's date is not after the time of the command.
	ErrInThePast = errors.New("concerts: the concert date is in the past")
	// ErrUnknownTicketType: the concert has no such ticket type.
	ErrUnknownTicketType = errors.New("concerts: unknown ticket type")
	// ErrConcertStarted: the concert has started, and its tickets are no
	// longer sold.
	ErrConcertStarted = errors.New("concerts: the concert has started")
)

// Stream returns the stream of a concert.
func Stream(concertID string) string { return "concert-" + concertID }

// TicketType is a kind of ticket and its price.
type TicketType struct {
	Name  string      `json:"name"`
	Price money.Money `json:"price"`
}

// Command is a command for a concert.
type Command interface{ isCommand() }

// CreateConcert announces a concert. Capacity per ticket type is for the
// inventory (package reservations); the concert keeps the prices.
type CreateConcert struct {
	ConcertID   string
	Name        string
	Artist      string
	StartsAt    time.Time
	Venue       string
	TicketTypes []TicketType
	Capacity    map[string]int
	OrganizerID string
	At          time.Time
}

// UpdateConcert changes a concert's name, artist, date or venue: it is
// the organizer's edit form. The decider records one event per field that
// changed, each saying what happened (renamed, rescheduled, moved).
type UpdateConcert struct {
	ConcertID string
	Name      string
	Artist    string
	StartsAt  time.Time
	Venue     string
	At        time.Time
}

// UpdateTicketTypes changes the prices of existing ticket types. A
// capacity change goes to the inventory in the same append (see package
// app).
type UpdateTicketTypes struct {
	ConcertID   string
	TicketTypes []TicketType
	Capacity    map[string]int
}

// CancelConcert cancels a concert.
type CancelConcert struct {
	ConcertID string
	Reason    string
}

func (CreateConcert) isCommand()     {}
func (UpdateConcert) isCommand()     {}
func (UpdateTicketTypes) isCommand() {}
func (CancelConcert) isCommand()     {}

// Event is an event of a concert stream.
type Event interface{ isEvent() }

// ConcertCreated (schema version 2): a concert was announced.
type ConcertCreated struct {
	ConcertID   string       `json:"concert_id"`
	Name        string       `json:"name"`
	Artist      string       `json:"artist"`
	StartsAt    time.Time    `json:"starts_at"`
	Venue       string       `json:"venue"`
	TicketTypes []TicketType `json:"ticket_types"`
	OrganizerID string       `json:"organizer_id"`
}

// ConcertUpdated: the concert's details changed.
//
// Deprecated: a copy of the edit form, which does not say what changed.
// The decider records [ConcertRenamed], [ArtistChanged],
// [ConcertRescheduled] and [ConcertMoved] instead; streams written before
// still hold ConcertUpdated, so it stays registered, and Evolve and the
// read models still apply it.
type ConcertUpdated struct {
	ConcertID string    `json:"concert_id"`
	Name      string    `json:"name"`
	Artist    string    `json:"artist"`
	StartsAt  time.Time `json:"starts_at"`
	Venue     string    `json:"venue"`
}

// ConcertRenamed: the concert has a new name.
type ConcertRenamed struct {
	ConcertID string `json:"concert_id"`
	Name      string `json:"name"`
}

// ArtistChanged: another artist performs.
type ArtistChanged struct {
	ConcertID string `json:"concert_id"`
	Artist    string `json:"artist"`
}

// ConcertRescheduled: the concert moved to another time. PreviousStartsAt
// is when it was to start: ticket holders are told both.
type ConcertRescheduled struct {
	ConcertID        string    `json:"concert_id"`
	StartsAt         time.Time `json:"starts_at"`
	PreviousStartsAt time.Time `json:"previous_starts_at"`
}

// ConcertMoved: the concert takes place at another venue.
type ConcertMoved struct {
	ConcertID string `json:"concert_id"`
	Venue     string `json:"venue"`
}

// TicketTypesUpdated: the ticket types' prices are now these.
type TicketTypesUpdated struct {
	ConcertID   string       `json:"concert_id"`
	TicketTypes []TicketType `json:"ticket_types"`
}

// ConcertCancelled: the concert will not take place.
type ConcertCancelled struct {
	ConcertID string `json:"concert_id"`
	Reason    string `json:"reason"`
}

func (ConcertCreated) isEvent()     {}
func (ConcertUpdated) isEvent()     {}
func (ConcertRenamed) isEvent()     {}
func (ArtistChanged) isEvent()      {}
func (ConcertRescheduled) isEvent() {}
func (ConcertMoved) isEvent()       {}
func (TicketTypesUpdated) isEvent() {}
func (ConcertCancelled) isEvent()   {}

// Concert is the state of a concert stream.
type Concert struct {
	ID          string
	Name        string
	Artist      string
	StartsAt    time.Time
	Venue       string
	TicketTypes []TicketType
	OrganizerID string
	Cancelled   bool
}

// Exists reports whether the concert was created.
func (c Concert) Exists() bool { return c.ID != "" }

// OnSale reports why the concert's tickets cannot be sold at time at, or
// nil: it does not exist (ErrNoConcert), was cancelled
// (ErrConcertCancelled), or has started (ErrConcertStarted). A ticket is
// for the concert from its start on, so its sale ends there.
func (c Concert) OnSale(at time.Time) error {
	switch {
	case !c.Exists():
		return ErrNoConcert
	case c.Cancelled:
		return ErrConcertCancelled
	case !at.Before(c.StartsAt):
		return fmt.Errorf("%w: at %s", ErrConcertStarted, c.StartsAt.Format(time.RFC3339))
	}
	return nil
}

// TicketType returns the ticket type called name.
func (c Concert) TicketType(name string) (TicketType, bool) {
	i := slices.IndexFunc(c.TicketTypes, func(t TicketType) bool { return t.Name == name })
	if i < 0 {
		return TicketType{}, false
	}
	return c.TicketTypes[i], true
}

// Decider returns the decider of a concert.
func Decider() es.Decider[Concert, Command, Event] {
	return es.Decider[Concert, Command, Event]{Initial: func() Concert { return Concert{} }, Decide: decide, Evolve: evolve}
}

func decide(s Concert, c Command) ([]Event, error) {
	switch c := c.(type) {
	case CreateConcert:
		if s.Exists() {
			return nil, ErrConcertExists
		}
		if err := details(c.ConcertID, c.Name, c.Artist, c.Venue, c.StartsAt, c.At); err != nil {
			return nil, err
		}
		if err := ticketTypes(c.TicketTypes, c.Capacity); err != nil {
			return nil, err
		}
		if c.OrganizerID == "" {
			// The organizer is paid and invoices in their name: a concert
			// without one could sell seats that no payment can be taken for.
			return nil, fmt.Errorf("%w: no organizer", ErrInvalidConcert)
		}
		return []Event{ConcertCreated{ConcertID: c.ConcertID, Name: c.Name, Artist: c.Artist, StartsAt: c.StartsAt.UTC(),
			Venue: c.Venue, TicketTypes: slices.Clone(c.TicketTypes), OrganizerID: c.OrganizerID}}, nil
	case UpdateConcert:
		if err := live(s); err != nil {
			return nil, err
		}
		if err := details(c.ConcertID, c.Name, c.Artist, c.Venue, c.StartsAt, c.At); err != nil {
			return nil, err
		}
		// One event per intent, only for what changed: a form sent back
		// unchanged records nothing.
		var events []Event
		if c.Name != s.Name {
			events = append(events, ConcertRenamed{ConcertID: c.ConcertID, Name: c.Name})
		}
		if c.Artist != s.Artist {
			events = append(events, ArtistChanged{ConcertID: c.ConcertID, Artist: c.Artist})
		}
		if !c.StartsAt.Equal(s.StartsAt) {
			events = append(events, ConcertRescheduled{ConcertID: c.ConcertID, StartsAt: c.StartsAt.UTC(), PreviousStartsAt: s.StartsAt})
		}
		if c.Venue != s.Venue {
			events = append(events, ConcertMoved{ConcertID: c.ConcertID, Venue: c.Venue})
		}
		return events, nil
	case UpdateTicketTypes:
		if err := live(s); err != nil {
			return nil, err
		}
		if err := names(c.TicketTypes); err != nil {
			return nil, err
		}
		for _, t := range c.TicketTypes {
			if _, ok := s.TicketType(t.Name); !ok {
				return nil, fmt.Errorf("%w: %q", ErrUnknownTicketType, t.Name)
			}
		}
		merged := slices.Clone(s.TicketTypes)
		for i, t := range merged {
			if j := slices.IndexFunc(c.TicketTypes, func(u TicketType) bool { return u.Name == t.Name }); j >= 0 {
				merged[i] = c.TicketTypes[j]
			}
		}
		if err := ticketTypes(merged, nil); err != nil {
			return nil, err
		}
		if slices.Equal(merged, s.TicketTypes) {
			return nil, nil
		}
		return []Event{TicketTypesUpdated{ConcertID: c.ConcertID, TicketTypes: merged}}, nil
	case CancelConcert:
		if err := live(s); err != nil {
			return nil, err
		}
		//lint:ignore S1016 an event is not a converted command: their fields must stay free to differ
		return []Event{ConcertCancelled{ConcertID: c.ConcertID, Reason: c.Reason}}, nil
	}
	return nil, fmt.Errorf("concerts: unknown command %T", c)
}

func live(s Concert) error {
	if !s.Exists() {
		return ErrNoConcert
	}
	if s.Cancelled {
		return ErrConcertCancelled
	}
	return nil
}

func details(id, name, artist, venue string, startsAt, at time.Time) error {
	for field, v := range map[string]string{"ID": id, "name": name, "artist": artist, "venue": venue} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%w: %s is empty", ErrInvalidConcert, field)
		}
	}
	if at.IsZero() || !startsAt.After(at) {
		return fmt.Errorf("%w: starts %s, now %s", ErrInThePast, startsAt.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return nil
}

// ticketTypes checks names, prices and one currency for all; and, when
// capacity is given, that every type has one and no other type does.
func ticketTypes(tts []TicketType, capacity map[string]int) error {
	if len(tts) == 0 {
		return fmt.Errorf("%w: no ticket types", ErrInvalidConcert)
	}
	if err := names(tts); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, t := range tts {
		switch {
		case t.Price.Validate() != nil:
			return fmt.Errorf("%w: %s: %w", ErrInvalidConcert, t.Name, t.Price.Validate())
		case t.Price.Amount <= 0:
			return fmt.Errorf("%w: %s: price %s is not positive", ErrInvalidConcert, t.Name, t.Price)
		case t.Price.Amount > MaxPrice:
			return fmt.Errorf("%w: %s: price %s is over %s", ErrInvalidConcert, t.Name, t.Price,
				money.Money{Amount: MaxPrice, Currency: t.Price.Currency})
		case t.Price.Currency != tts[0].Price.Currency:
			return fmt.Errorf("%w: %s: %w", ErrInvalidConcert, t.Name, money.ErrCurrencyMismatch)
		}
		seen[t.Name] = true
		if capacity != nil && capacity[t.Name] <= 0 {
			return fmt.Errorf("%w: %s has no capacity", ErrInvalidConcert, t.Name)
		}
	}
	for name := range capacity {
		if !seen[name] {
			// In one command, a capacity without a price is a malformed
			// list, not a reference to a type the concert lacks.
			return fmt.Errorf("%w: capacity for %q, which has no price", ErrInvalidConcert, name)
		}
	}
	return nil
}

// names checks that each ticket type's name is one a buyer can use: not
// blank, at most MaxTicketTypeName bytes of UTF-8 without control
// characters, and named once, so that no two prices compete for a name.
func names(tts []TicketType) error {
	seen := make(map[string]bool, len(tts))
	for _, t := range tts {
		switch {
		case strings.TrimSpace(t.Name) == "":
			return fmt.Errorf("%w: a ticket type has no name", ErrInvalidConcert)
		case len(t.Name) > MaxTicketTypeName:
			return fmt.Errorf("%w: ticket type name %.20q... is longer than %d bytes", ErrInvalidConcert, t.Name, MaxTicketTypeName)
		case !utf8.ValidString(t.Name) || strings.ContainsFunc(t.Name, unicode.IsControl):
			return fmt.Errorf("%w: ticket type name %q is not UTF-8 text without control characters", ErrInvalidConcert, t.Name)
		case seen[t.Name]:
			return fmt.Errorf("%w: ticket type %q is named twice", ErrInvalidConcert, t.Name)
		}
		seen[t.Name] = true
	}
	return nil
}

func evolve(s Concert, e Event) Concert {
	switch e := e.(type) {
	case ConcertCreated:
		s = Concert{ID: e.ConcertID, Name: e.Name, Artist: e.Artist, StartsAt: e.StartsAt, Venue: e.Venue, TicketTypes: e.TicketTypes,
			OrganizerID: e.OrganizerID}
	case ConcertUpdated:
		s.Name, s.Artist, s.StartsAt, s.Venue = e.Name, e.Artist, e.StartsAt, e.Venue
	case ConcertRenamed:
		s.Name = e.Name
	case ArtistChanged:
		s.Artist = e.Artist
	case ConcertRescheduled:
		s.StartsAt = e.StartsAt
	case ConcertMoved:
		s.Venue = e.Venue
	case TicketTypesUpdated:
		s.TicketTypes = e.TicketTypes
	case ConcertCancelled:
		s.Cancelled = true
	}
	return s
}
