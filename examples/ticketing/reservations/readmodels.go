package reservations

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
)

// UserReservation is one line of the user reservations read model.
type UserReservation struct {
	ReservationID string
	ConcertID     string
	Seats         map[string]int
	Status        Status
	ExpiresAt     time.Time
}

// UserReservationsProjection keeps the reservations of each user in the
// table user_reservations, from the reservations' own streams (the
// inventory's counts are not needed here). Every event sets a row to what the event says
// (rather than adding to it), so the model is idempotent by construction.
// Its SQL is portable: the same projection runs on SQLite and PostgreSQL.
func UserReservationsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "user-reservations",
		Tables: []string{"user_reservations"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("user_reservations")+` (
				reservation_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, concert_id TEXT NOT NULL,
				seats TEXT NOT NULL, status TEXT NOT NULL, expires_at TEXT NOT NULL);
				CREATE INDEX IF NOT EXISTS `+t.Index("user_reservations", "by_user")+` ON `+t.Name("user_reservations")+` (user_id)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			table := t.Name("user_reservations")
			setStatus := func(id string, st Status) error {
				_, err := tx.Exec(ctx, `UPDATE `+table+` SET status = $1 WHERE reservation_id = $2`, st, id)
				return err
			}
			switch ev := v.(type) {
			case SeatsReserved:
				seats, _ := json.Marshal(ev.Seats)
				_, err = tx.Exec(ctx, `INSERT INTO `+table+` (reservation_id, user_id, concert_id, seats, status, expires_at)
					VALUES ($1, $2, $3, $4, $5, $6)
					ON CONFLICT (reservation_id) DO UPDATE SET user_id = excluded.user_id, concert_id = excluded.concert_id,
						seats = excluded.seats, status = excluded.status, expires_at = excluded.expires_at`,
					ev.ReservationID, ev.UserID, ev.ConcertID, string(seats), Held, ev.ExpiresAt.UTC().Format(time.RFC3339Nano))
			case ReservationConfirmed:
				err = setStatus(ev.ReservationID, Confirmed)
			case ReservationCancelled:
				err = setStatus(ev.ReservationID, Cancelled)
			case ReservationExpired:
				err = setStatus(ev.ReservationID, Expired)
			}
			return err
		},
	}
}

// UserReservations returns a user's reservations, by reservation ID.
func UserReservations(ctx context.Context, db *sql.DB, userID string) ([]UserReservation, error) {
	rows, err := db.QueryContext(ctx, `SELECT reservation_id, concert_id, seats, status, expires_at
		FROM user_reservations WHERE user_id = $1 ORDER BY reservation_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("user reservations: %w", err)
	}
	defer rows.Close()
	var out []UserReservation
	for rows.Next() {
		var r UserReservation
		var seats, expires string
		if err := rows.Scan(&r.ReservationID, &r.ConcertID, &seats, &r.Status, &expires); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(seats), &r.Seats); err != nil {
			return nil, err
		}
		if r.ExpiresAt, err = time.Parse(time.RFC3339Nano, expires); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ConcertReservations is the concert reservations read model of one
// concert: the capacity per ticket type, the seats held and confirmed per
// ticket type, and the reservations still active (held or confirmed). It
// is the reservations module's answer to "how many seats are left": other
// modules ask it (package web shows it beside the concert's details) rather
// than project the inventory's events themselves.
type ConcertReservations struct {
	ConcertID string
	Capacity  map[string]int
	Held      map[string]int
	Confirmed map[string]int
	Active    []ConcertReservation
}

// Left returns the seats of ticketType that no active reservation holds:
// the capacity less the seats held and confirmed.
func (c ConcertReservations) Left(ticketType string) int {
	return c.Capacity[ticketType] - c.Held[ticketType] - c.Confirmed[ticketType]
}

// ConcertReservation is an active reservation of a concert.
type ConcertReservation struct {
	ReservationID string
	UserID        string
	Seats         map[string]int
	Status        Status
}

// ConcertReservationsProjection keeps each concert's reservations, one row
// per reservation and ticket type, in the table concert_reservations, from
// the reservations' own streams: held and confirmed seats are told apart
// there, while the inventory counts only the seats taken. It keeps each
// ticket type's capacity in concert_capacity, from the inventory's
// InventoryOpened and CapacityChanged, so that the seats left are known
// here, in the module that owns them.
// Rows are upserted and their status set, so redelivery changes nothing.
// Its SQL is portable: the same projection runs on SQLite and PostgreSQL.
//
// Its name was "concert-reservations" before it kept the capacity: under
// the new name its checkpoint starts at 0, so a database written before
// replays the log and learns the capacity of the concerts created then.
func ConcertReservationsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "concert-seats",
		Tables: []string{"concert_reservations", "concert_capacity"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("concert_reservations")+` (
				concert_id TEXT NOT NULL, reservation_id TEXT NOT NULL, user_id TEXT NOT NULL,
				ticket_type TEXT NOT NULL, seats INTEGER NOT NULL, status TEXT NOT NULL,
				PRIMARY KEY (reservation_id, ticket_type));
				CREATE INDEX IF NOT EXISTS `+t.Index("concert_reservations", "by_concert")+` ON `+t.Name("concert_reservations")+` (concert_id);
				CREATE TABLE IF NOT EXISTS `+t.Name("concert_capacity")+` (concert_id TEXT NOT NULL, ticket_type TEXT NOT NULL,
					capacity INTEGER NOT NULL, PRIMARY KEY (concert_id, ticket_type))`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			table := t.Name("concert_reservations")
			setCapacity := func(concertID, ticketType string, n int) error {
				_, err := tx.Exec(ctx, `INSERT INTO `+t.Name("concert_capacity")+` (concert_id, ticket_type, capacity) VALUES ($1, $2, $3)
					ON CONFLICT (concert_id, ticket_type) DO UPDATE SET capacity = excluded.capacity`, concertID, ticketType, n)
				return err
			}
			setStatus := func(id string, st Status) error {
				_, err := tx.Exec(ctx, `UPDATE `+table+` SET status = $1 WHERE reservation_id = $2`, st, id)
				return err
			}
			switch ev := v.(type) {
			case InventoryOpened:
				for _, tt := range slices.Sorted(maps.Keys(ev.Capacity)) {
					if err := setCapacity(ev.ConcertID, tt, ev.Capacity[tt]); err != nil {
						return err
					}
				}
			case CapacityChanged:
				err = setCapacity(ev.ConcertID, ev.TicketType, ev.Capacity)
			case SeatsReserved:
				for _, tt := range slices.Sorted(maps.Keys(ev.Seats)) {
					if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (concert_id, reservation_id, user_id, ticket_type, seats, status)
						VALUES ($1, $2, $3, $4, $5, $6)
						ON CONFLICT (reservation_id, ticket_type) DO UPDATE SET concert_id = excluded.concert_id,
							user_id = excluded.user_id, seats = excluded.seats, status = excluded.status`,
						ev.ConcertID, ev.ReservationID, ev.UserID, tt, ev.Seats[tt], Held); err != nil {
						return err
					}
				}
			case ReservationConfirmed:
				err = setStatus(ev.ReservationID, Confirmed)
			case ReservationCancelled:
				err = setStatus(ev.ReservationID, Cancelled)
			case ReservationExpired:
				err = setStatus(ev.ReservationID, Expired)
			}
			return err
		},
	}
}

// ConcertReservationsOf returns the concert reservations read model of a
// concert.
func ConcertReservationsOf(ctx context.Context, db *sql.DB, concertID string) (ConcertReservations, error) {
	out := ConcertReservations{ConcertID: concertID, Capacity: map[string]int{}, Held: map[string]int{}, Confirmed: map[string]int{}}
	caps, err := db.QueryContext(ctx, `SELECT ticket_type, capacity FROM concert_capacity WHERE concert_id = $1`, concertID)
	if err != nil {
		return out, fmt.Errorf("concert capacity: %w", err)
	}
	for caps.Next() {
		var tt string
		var n int
		if err := caps.Scan(&tt, &n); err != nil {
			caps.Close()
			return out, err
		}
		out.Capacity[tt] = n
	}
	if err := caps.Close(); err != nil {
		return out, err
	}
	if err := caps.Err(); err != nil {
		return out, err
	}
	rows, err := db.QueryContext(ctx, `SELECT reservation_id, user_id, ticket_type, seats, status
		FROM concert_reservations WHERE concert_id = $1 AND status IN ('held', 'confirmed')
		ORDER BY reservation_id, ticket_type`, concertID)
	if err != nil {
		return out, fmt.Errorf("concert reservations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, user, tt string
		var seats int
		var st Status
		if err := rows.Scan(&id, &user, &tt, &seats, &st); err != nil {
			return out, err
		}
		if st == Held {
			out.Held[tt] += seats
		} else {
			out.Confirmed[tt] += seats
		}
		if n := len(out.Active); n > 0 && out.Active[n-1].ReservationID == id {
			out.Active[n-1].Seats[tt] = seats
			continue
		}
		out.Active = append(out.Active, ConcertReservation{ReservationID: id, UserID: user, Seats: map[string]int{tt: seats}, Status: st})
	}
	return out, rows.Err()
}
