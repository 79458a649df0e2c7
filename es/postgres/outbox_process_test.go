package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"esgo.dev/es"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
)

// The booking process of TestProcessManagerCrash: an order placed asks
// for seats to be reserved, a command handled by the seats module.
type (
	BookingOrderPlaced struct {
		OrderID string `json:"order_id"`
	}
	ReserveSeats struct {
		OrderID string `json:"order_id"`
	}
	// SeatsRequested is the booking process's event.
	SeatsRequested struct {
		OrderID string `json:"order_id"`
	}
	// SeatsReserved is the seats module's event.
	SeatsReserved struct {
		OrderID string `json:"order_id"`
	}
)

func bookingRegistry() (*es.Registry, error) {
	reg := es.NewRegistry()
	for _, err := range []error{
		es.Register[BookingOrderPlaced](reg, "OrderPlaced"),
		es.Register[ReserveSeats](reg, "ReserveSeats"),
		es.Register[SeatsRequested](reg, "SeatsRequested"),
		es.Register[SeatsReserved](reg, "SeatsReserved"),
	} {
		if err != nil {
			return nil, err
		}
	}
	return reg, nil
}

var booking = es.ProcessManager[bool, SeatsRequested]{
	Name: "booking",
	Correlate: func(msg any) string {
		if m, ok := msg.(BookingOrderPlaced); ok {
			return m.OrderID
		}
		return ""
	},
	Initial: func() bool { return false },
	React: func(requested bool, msg any, _ time.Time) (es.Reaction[SeatsRequested], error) {
		m := msg.(BookingOrderPlaced)
		if requested {
			return es.Reaction[SeatsRequested]{}, nil
		}
		return es.Reaction[SeatsRequested]{
			Events: []SeatsRequested{{OrderID: m.OrderID}},
			//lint:ignore S1016 a message is not a converted event: their fields must stay free to differ
			Send: []es.Send{{Message: ReserveSeats{OrderID: m.OrderID}}},
		}, nil
	},
	Evolve: func(bool, SeatsRequested) bool { return true },
}

// seats reserves seats every time it is asked: only the command ID keeps
// a redelivered ReserveSeats from reserving twice.
var seats = es.Decider[int, ReserveSeats, SeatsReserved]{
	Initial: func() int { return 0 },
	Decide: func(_ int, c ReserveSeats) ([]SeatsReserved, error) {
		return []SeatsReserved{{OrderID: c.OrderID}}, nil
	},
	Evolve: func(n int, _ SeatsReserved) int { return n + 1 },
}

// bookingBus is the publisher of the "process" child: a bus that hands
// OrderPlaced to the booking process and ReserveSeats to the seats
// command handler (with the message ID as the command ID). A child that
// kills itself after a delivery's effect (childLife.AfterEffect) dies
// between handling an OrderPlaced and the dispatch of its ReserveSeats,
// or between applying a command and its acknowledgement.
func bookingBus(s *postgres.Store) es.Publisher {
	reg, err := bookingRegistry()
	if err != nil {
		panic(err) // the types above register; a test bug otherwise
	}
	process := es.NewProcessHandler(s, reg, booking, es.ProcessConfig{})
	commands := es.NewCommandHandler(s, reg, seats, es.HandlerConfig{})
	bus := es.NewBus()
	bus.Subscribe("OrderPlaced", process.Handle)
	bus.Subscribe("ReserveSeats", func(ctx context.Context, m es.Message) error {
		v, err := es.DecodeMessage(reg, m)
		if err != nil {
			return err
		}
		cmd := v.(ReserveSeats)
		_, err = commands.Handle(ctx, m.ID, "seats-"+cmd.OrderID, cmd)
		return err
	})
	return bus
}

// TestProcessManagerCrash places 300 orders and runs relay, bus, booking
// process and seats command handler in a child process that is killed
// again and again (see crashLives): by the test, and by itself before
// handling a message or between handling it and acknowledging it. At
// the end, every order has one SeatsRequested and one SeatsReserved: no
// command was lost, none applied twice.
func TestProcessManagerCrash(t *testing.T) {
	const orders, minKills = 300, 10
	s := pgtest.NewStore(t, postgres.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), crashTimeout)
	defer cancel()
	createEffectTables(ctx, t, s) // the children log their attempts
	reg, err := bookingRegistry()
	if err != nil {
		t.Fatal(err)
	}
	for i := range orders {
		id := es.NewID()
		m, err := es.NewMessage(reg, id, BookingOrderPlaced{OrderID: id})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEnqueue(ctx, es.Enqueue{Messages: []es.Message{m}},
			es.StreamAppend{StreamID: "order-" + id, Expected: es.NoStream, Events: newEvents("Placed", 1)}); err != nil {
			t.Fatalf("order %d: %v", i, err)
		}
	}

	kills, selfKills := crashLives(ctx, t, s, "process", minKills, 120, 100, 2*time.Millisecond)
	var attempts, messages int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT message_id) FROM `+
		pgx.Identifier{s.Schema(), "attempts"}.Sanitize()).Scan(&attempts, &messages); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d orders: the child was killed %d times, %d of them by itself; %d attempts to deliver %d messages",
		orders, kills, selfKills, attempts, messages)
	if messages != 2*orders {
		t.Errorf("%d messages delivered, want %d orders and %d commands", messages, orders, orders)
	}
	if attempts == messages {
		t.Error("no message was delivered twice: the kills tested nothing")
	}

	q := pgx.Identifier{s.Schema(), "events"}.Sanitize()
	rows, err := s.Pool().Query(ctx, `SELECT split_part(stream_id, '-', 1) AS c, count(*), count(DISTINCT stream_id),
			max(version), count(*) FILTER (WHERE type NOT IN ('SeatsRequested', 'SeatsReserved'))
		FROM `+q+` WHERE category IN ('booking', 'seats') GROUP BY c ORDER BY c`)
	if err != nil {
		t.Fatal(err)
	}
	var (
		category                    string
		events, streams, maxVersion int
		others                      int
	)
	found := 0
	if _, err := pgx.ForEachRow(rows, []any{&category, &events, &streams, &maxVersion, &others}, func() error {
		found++
		if events != orders || streams != orders || maxVersion != 1 || others != 0 {
			t.Errorf("%s: %d events in %d streams (longest %d, %d of other types), want %d streams of one event",
				category, events, streams, maxVersion, others, orders)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if found != 2 {
		t.Fatalf("found %d of the 2 categories", found)
	}
}
