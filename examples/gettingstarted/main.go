// Command gettingstarted is the program docs/getting-started.md is built
// around: the seats of a concert as a decider, stored in SQLite, with a
// read model of the seats left and given/when/then specs
// (main_test.go). The page shows its regions verbatim, and a test
// (internal/docs) fails when they drift apart.
//
// Run it with go run ./examples/gettingstarted [file]; it keeps its events
// in seats.db by default.
package main

// region: imports
import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/sqlite"
)

// endregion

// region: events
// The events of a concert's seats. Each says what happened, in the past
// tense, with what a reader needs to know about it.
type (
	// Event is any event of a seats stream.
	Event interface{ isEvent() }
	// SalesOpened: the concert's seats went on sale.
	SalesOpened struct {
		Seats int `json:"seats"`
	}
	// SeatsReserved: a fan reserved seats.
	SeatsReserved struct {
		ReservationID string `json:"reservation_id"`
		Seats         int    `json:"seats"`
	}
)

func (SalesOpened) isEvent()   {}
func (SeatsReserved) isEvent() {}

// register gives each event its stored name: never the Go type's name, so
// renaming a Go type does not break stored events.
func register(reg *es.Registry) {
	es.MustRegister[SalesOpened](reg, "seats.SalesOpened")
	es.MustRegister[SeatsReserved](reg, "seats.SeatsReserved")
}

// endregion

// region: decider
// The commands: what someone asks for. They may be refused.
type (
	// Command is any command of a seats stream.
	Command interface{ isCommand() }
	// OpenSales puts a number of seats on sale.
	OpenSales struct{ Capacity int }
	// Reserve reserves seats for a reservation.
	Reserve struct {
		Seats         int
		ReservationID string
	}
)

func (OpenSales) isCommand() {}
func (Reserve) isCommand()   {}

// The business rules, as errors a caller can test with errors.Is.
var (
	ErrNotOnSale  = errors.New("seats: not on sale")
	ErrOnSale     = errors.New("seats: already on sale")
	ErrSoldOut    = errors.New("seats: not enough seats left")
	ErrBadRequest = errors.New("seats: the number of seats must be positive")
)

// Seats is the state the decider needs: only what its rules look at.
type Seats struct {
	OnSale bool
	Left   int
}

// decider decides which events a command causes, given the state folded
// from the stream's events so far. Both functions are pure: no I/O, no
// clock.
var decider = es.Decider[Seats, Command, Event]{
	Initial: func() Seats { return Seats{} },
	Decide: func(s Seats, c Command) ([]Event, error) {
		switch c := c.(type) {
		case OpenSales:
			if s.OnSale {
				return nil, ErrOnSale
			}
			if c.Capacity <= 0 {
				return nil, ErrBadRequest
			}
			return []Event{SalesOpened{Seats: c.Capacity}}, nil
		case Reserve:
			switch {
			case !s.OnSale:
				return nil, ErrNotOnSale
			case c.Seats <= 0:
				return nil, ErrBadRequest
			case c.Seats > s.Left:
				return nil, fmt.Errorf("%w: %d asked, %d left", ErrSoldOut, c.Seats, s.Left)
			}
			return []Event{SeatsReserved{ReservationID: c.ReservationID, Seats: c.Seats}}, nil
		}
		return nil, fmt.Errorf("seats: unknown command %T", c)
	},
	Evolve: func(s Seats, e Event) Seats {
		switch e := e.(type) {
		case SalesOpened:
			s.OnSale, s.Left = true, e.Seats
		case SeatsReserved:
			s.Left -= e.Seats
		}
		return s
	},
}

// endregion

// region: projection
// seatsLeft is a read model: one row per concert with the seats left, in
// a SQLite table the store keeps up to date from the events. It stores the
// version of the last event it applied and ignores older ones, so applying
// an event twice changes nothing.
func seatsLeft(reg *es.Registry) sqlite.Projection {
	return sqlite.Projection{
		Name:   "seats-left",
		Tables: []string{"seats_left"},
		Setup: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables) error {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.Name("seats_left")+` (
				stream TEXT PRIMARY KEY, seats_left INTEGER NOT NULL, version INTEGER NOT NULL)`)
			return err
		},
		Apply: func(ctx context.Context, tx *sql.Tx, t sqlite.Tables, e es.Event) error {
			v, known, err := reg.DecodeKnown(e) // decodes, and upcasts old versions
			if !known || err != nil {
				return err
			}
			change := 0
			switch v := v.(type) {
			case SalesOpened:
				change = v.Seats
			case SeatsReserved:
				change = -v.Seats
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO `+t.Name("seats_left")+` VALUES (?, ?, ?)
				ON CONFLICT (stream) DO UPDATE SET seats_left = seats_left + excluded.seats_left,
					version = excluded.version WHERE version < excluded.version`,
				e.StreamID, change, e.Version)
			return err
		},
	}
}

// left reads the read model.
func left(ctx context.Context, db *sql.DB, stream string) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT seats_left FROM seats_left WHERE stream = ?`, stream).Scan(&n)
	return n, err
}

// endregion

// region: main
func main() {
	path := "seats.db"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	if err := run(ctx, store, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// endregion

// region: run
// run handles a few commands on store and prints the stream and the read
// model.
func run(ctx context.Context, store *sqlite.Store, out io.Writer) error {
	reg := es.NewRegistry()
	register(reg)

	// The projection follows the store's events in a subscription, which
	// commits each batch's changes with its checkpoint.
	proj := seatsLeft(reg)
	sub := es.NewSubscription(proj.Name, store, store.Consumer(proj), es.SubscriptionConfig{})
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		if err := sub.Run(ctx); err != nil {
			log.Print(err)
		}
	}()

	// The command handler loads the stream, decides, and appends with the
	// version it loaded: a concurrent writer makes it reload and retry.
	seats := es.NewCommandHandler(store, reg, decider, es.HandlerConfig{})
	stream := "seats-warsaw-2026"
	commands := []struct {
		id  string // the command's ID: handled twice, it appends once
		cmd Command
	}{
		{"open-1", OpenSales{Capacity: 10}},
		{"reserve-1", Reserve{ReservationID: "r-1", Seats: 4}},
		{"reserve-1", Reserve{ReservationID: "r-1", Seats: 4}}, // a retry
		{"reserve-2", Reserve{ReservationID: "r-2", Seats: 8}},
	}
	var last int64
	for _, c := range commands {
		res, err := seats.Handle(ctx, c.id, stream, c.cmd)
		switch {
		case errors.Is(err, ErrSoldOut):
			fmt.Fprintln(out, "refused:", err)
		case err != nil:
			return err
		case res.Repeated:
			fmt.Fprintln(out, "repeated:", c.id)
		default:
			last = res.Position
		}
	}

	for e, err := range store.ReadStream(ctx, stream, es.StreamQuery{}) {
		if err != nil {
			return err
		}
		fmt.Fprintln(out, e.Version, e.Type, string(e.Data))
	}

	// The read model is behind the writes: wait for the last one.
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sub.WaitFor(wait, last); err != nil {
		return err
	}
	n, err := left(ctx, store.DB(), stream)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "seats left:", n)
	return nil
}

// endregion
