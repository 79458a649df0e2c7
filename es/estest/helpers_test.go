package estest_test

import (
	"errors"
	"fmt"
	"testing"

	"esgo.dev/es"
	"esgo.dev/internal/tbtest"
)

// run runs spec against a recorder that keeps failures instead of failing.
func run(t *testing.T, spec func(tb testing.TB)) *tbtest.Recorder { return tbtest.Run(t, spec) }

// A ticket pool: the domain of these tests.

type PoolEvent interface{ isPoolEvent() }

type SeatsAdded struct {
	Seats int `json:"seats"`
}

type SeatsReserved struct {
	ReservationID string `json:"reservation_id"`
	Seats         int    `json:"seats"`
}

func (SeatsAdded) isPoolEvent()    {}
func (SeatsReserved) isPoolEvent() {}

type Reserve struct {
	ReservationID string
	Seats         int
}

type Pool struct{ Free int }

var ErrSoldOut = errors.New("sold out")

// ShortError is the refusal of a reservation: it is ErrSoldOut, with the
// numbers.
type ShortError struct{ Asked, Free int }

func (e *ShortError) Error() string {
	return fmt.Sprintf("%v: %d seats asked, %d free", ErrSoldOut, e.Asked, e.Free)
}
func (e *ShortError) Unwrap() error { return ErrSoldOut }

// ClosedError is an error the pool never returns.
type ClosedError struct{}

func (*ClosedError) Error() string { return "closed" }

var pool = es.Decider[Pool, Reserve, PoolEvent]{
	Initial: func() Pool { return Pool{} },
	Decide: func(p Pool, c Reserve) ([]PoolEvent, error) {
		if c.Seats > p.Free {
			return nil, &ShortError{Asked: c.Seats, Free: p.Free}
		}
		if c.Seats == 0 {
			return nil, nil
		}
		//lint:ignore S1016 an event is not a converted command: their fields must stay free to differ
		return []PoolEvent{SeatsReserved{ReservationID: c.ReservationID, Seats: c.Seats}}, nil
	},
	Evolve: func(p Pool, e PoolEvent) Pool {
		switch e := e.(type) {
		case SeatsAdded:
			p.Free += e.Seats
		case SeatsReserved:
			p.Free -= e.Seats
		}
		return p
	},
}

func poolRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[SeatsAdded](reg, "SeatsAdded")
	es.MustRegister[SeatsReserved](reg, "SeatsReserved")
	return reg
}
