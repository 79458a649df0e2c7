package concerts

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/money"
)

// Details is the concert details read model: what a fan sees before
// buying.
type Details struct {
	ConcertID   string
	Name        string
	Artist      string
	StartsAt    time.Time
	Venue       string
	Cancelled   bool
	TicketTypes []TicketTypeDetails
}

// TicketTypeDetails is a ticket type with its price and its seats.
//
// Capacity and Left belong to the reservations module, which owns the
// seats: DetailsOf leaves them zero, and the caller that shows a concert
// fills them from that module's read model (package web does, with
// reservations.ConcertReservationsOf). The concerts module does not
// project the reservations module's events.
type TicketTypeDetails struct {
	Name     string
	Price    money.Money
	Capacity int
	Left     int
}

const timeLayout = time.RFC3339Nano

// DetailsProjection keeps concert details in the tables concert_details
// and concert_ticket_types, from the concert streams only: the seats are
// the reservations module's (see [TicketTypeDetails]). Its SQL is
// portable: the same projection runs on SQLite and PostgreSQL.
//
// The workshop design builds its availability from the concert's and the
// reservations' events; this projection did so too, until the
// reservations module got a read model of its own seats: a module's
// events are its own, and another module reading them makes them a
// contract by accident.
func DetailsProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "concert-details",
		Tables: []string{"concert_details", "concert_ticket_types"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `
				CREATE TABLE IF NOT EXISTS `+t.Name("concert_details")+` (concert_id TEXT PRIMARY KEY, name TEXT NOT NULL,
					artist TEXT NOT NULL, starts_at TEXT NOT NULL, venue TEXT NOT NULL, cancelled INTEGER NOT NULL);
				CREATE TABLE IF NOT EXISTS `+t.Name("concert_ticket_types")+` (concert_id TEXT NOT NULL, name TEXT NOT NULL,
					price BIGINT NOT NULL DEFAULT 0, currency TEXT NOT NULL DEFAULT '',
					PRIMARY KEY (concert_id, name))`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			exec := func(q string, args ...any) error {
				_, err := tx.Exec(ctx, q, args...)
				return err
			}
			details, types := t.Name("concert_details"), t.Name("concert_ticket_types")
			setDetails := func(id, name, artist string, startsAt time.Time, venue string) error {
				return exec(`INSERT INTO `+details+` (concert_id, name, artist, starts_at, venue, cancelled) VALUES ($1, $2, $3, $4, $5, 0)
					ON CONFLICT (concert_id) DO UPDATE SET name = excluded.name, artist = excluded.artist,
						starts_at = excluded.starts_at, venue = excluded.venue, cancelled = excluded.cancelled`,
					id, name, artist, startsAt.UTC().Format(timeLayout), venue)
			}
			setPrices := func(id string, tts []TicketType) error {
				for _, tt := range tts {
					if err := exec(`INSERT INTO `+types+` (concert_id, name, price, currency) VALUES ($1, $2, $3, $4)
						ON CONFLICT (concert_id, name) DO UPDATE SET price = excluded.price, currency = excluded.currency`,
						id, tt.Name, tt.Price.Amount, tt.Price.Currency); err != nil {
						return err
					}
				}
				return nil
			}
			switch ev := v.(type) {
			case ConcertCreated:
				if err := setDetails(ev.ConcertID, ev.Name, ev.Artist, ev.StartsAt, ev.Venue); err != nil {
					return err
				}
				return setPrices(ev.ConcertID, ev.TicketTypes)
			case ConcertUpdated:
				return exec(`UPDATE `+details+` SET name = $1, artist = $2, starts_at = $3, venue = $4 WHERE concert_id = $5`,
					ev.Name, ev.Artist, ev.StartsAt.UTC().Format(timeLayout), ev.Venue, ev.ConcertID)
			case ConcertRenamed:
				return exec(`UPDATE `+details+` SET name = $1 WHERE concert_id = $2`, ev.Name, ev.ConcertID)
			case ArtistChanged:
				return exec(`UPDATE `+details+` SET artist = $1 WHERE concert_id = $2`, ev.Artist, ev.ConcertID)
			case ConcertRescheduled:
				return exec(`UPDATE `+details+` SET starts_at = $1 WHERE concert_id = $2`, ev.StartsAt.UTC().Format(timeLayout), ev.ConcertID)
			case ConcertMoved:
				return exec(`UPDATE `+details+` SET venue = $1 WHERE concert_id = $2`, ev.Venue, ev.ConcertID)
			case TicketTypesUpdated:
				return setPrices(ev.ConcertID, ev.TicketTypes)
			case ConcertCancelled:
				return exec(`UPDATE `+details+` SET cancelled = 1 WHERE concert_id = $1`, ev.ConcertID)
			}
			return nil
		},
	}
}

// ErrNotFound reports a concert the read model does not (yet) know.
var ErrNotFound = errors.New("concerts: concert not found in the read model")

// DetailsOf returns the details of a concert.
func DetailsOf(ctx context.Context, db *sql.DB, concertID string) (Details, error) {
	d := Details{ConcertID: concertID}
	var startsAt string
	err := db.QueryRowContext(ctx, `SELECT name, artist, starts_at, venue, cancelled FROM concert_details WHERE concert_id = $1`, concertID).
		Scan(&d.Name, &d.Artist, &startsAt, &d.Venue, &d.Cancelled)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("%w: %s", ErrNotFound, concertID)
	}
	if err != nil {
		return d, fmt.Errorf("concert details: %w", err)
	}
	if d.StartsAt, err = time.Parse(timeLayout, startsAt); err != nil {
		return d, err
	}
	rows, err := db.QueryContext(ctx, `SELECT name, price, currency FROM concert_ticket_types
		WHERE concert_id = $1 ORDER BY price DESC, name`, concertID)
	if err != nil {
		return d, fmt.Errorf("concert details: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var tt TicketTypeDetails
		if err := rows.Scan(&tt.Name, &tt.Price.Amount, &tt.Price.Currency); err != nil {
			return d, err
		}
		d.TicketTypes = append(d.TicketTypes, tt)
	}
	return d, rows.Err()
}

// Available is an entry of the available concerts read model.
type Available struct {
	ConcertID string
	Name      string
	Artist    string
	StartsAt  time.Time
	Venue     string
}

// AvailableProjection keeps the concerts on sale in the table
// available_concerts: created ones are inserted, renamed, rescheduled or
// moved ones updated, cancelled ones deleted. Its SQL is portable: the same projection runs on SQLite and
// PostgreSQL.
func AvailableProjection(reg *es.Registry) sqlprojection.Projection {
	return sqlprojection.Projection{
		Name:   "available-concerts",
		Tables: []string{"available_concerts"},
		Setup: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables) error {
			_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("available_concerts")+` (concert_id TEXT PRIMARY KEY,
				name TEXT NOT NULL, artist TEXT NOT NULL, starts_at TEXT NOT NULL, venue TEXT NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx sqlprojection.Tx, t sqlprojection.Tables, e es.Event) error {
			v, ok, err := reg.DecodeKnown(e)
			if !ok || err != nil {
				return err
			}
			table := t.Name("available_concerts")
			switch ev := v.(type) {
			case ConcertCreated:
				_, err = tx.Exec(ctx, `INSERT INTO `+table+` (concert_id, name, artist, starts_at, venue) VALUES ($1, $2, $3, $4, $5)
					ON CONFLICT (concert_id) DO UPDATE SET name = excluded.name, artist = excluded.artist,
						starts_at = excluded.starts_at, venue = excluded.venue`,
					ev.ConcertID, ev.Name, ev.Artist, ev.StartsAt.UTC().Format(timeLayout), ev.Venue)
			case ConcertUpdated:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET name = $1, artist = $2, starts_at = $3, venue = $4 WHERE concert_id = $5`,
					ev.Name, ev.Artist, ev.StartsAt.UTC().Format(timeLayout), ev.Venue, ev.ConcertID)
			case ConcertRenamed:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET name = $1 WHERE concert_id = $2`, ev.Name, ev.ConcertID)
			case ArtistChanged:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET artist = $1 WHERE concert_id = $2`, ev.Artist, ev.ConcertID)
			case ConcertRescheduled:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET starts_at = $1 WHERE concert_id = $2`, ev.StartsAt.UTC().Format(timeLayout), ev.ConcertID)
			case ConcertMoved:
				_, err = tx.Exec(ctx, `UPDATE `+table+` SET venue = $1 WHERE concert_id = $2`, ev.Venue, ev.ConcertID)
			case ConcertCancelled:
				_, err = tx.Exec(ctx, `DELETE FROM `+table+` WHERE concert_id = $1`, ev.ConcertID)
			}
			return err
		},
	}
}

// AvailableConcerts lists the concerts on sale that start after now, the
// soonest first. The time is the caller's, like everywhere in the example.
func AvailableConcerts(ctx context.Context, db *sql.DB, now time.Time) ([]Available, error) {
	// RFC 3339 times in UTC with nanoseconds do not sort as text when the
	// fraction's length varies, so compare them as times in Go.
	rows, err := db.QueryContext(ctx, `SELECT concert_id, name, artist, starts_at, venue FROM available_concerts`)
	if err != nil {
		return nil, fmt.Errorf("available concerts: %w", err)
	}
	defer rows.Close()
	var out []Available
	for rows.Next() {
		var a Available
		var startsAt string
		if err := rows.Scan(&a.ConcertID, &a.Name, &a.Artist, &startsAt, &a.Venue); err != nil {
			return nil, err
		}
		if a.StartsAt, err = time.Parse(timeLayout, startsAt); err != nil {
			return nil, err
		}
		if a.StartsAt.After(now) {
			out = append(out, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sortByDate(out)
	return out, nil
}

func sortByDate(a []Available) {
	slices.SortFunc(a, func(x, y Available) int {
		if c := x.StartsAt.Compare(y.StartsAt); c != 0 {
			return c
		}
		return strings.Compare(x.ConcertID, y.ConcertID)
	})
}
