package estest_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"esgo.dev/es"
)

// recorder is a testing.TB that records failures instead of failing the
// test, so that tests can check what a failing spec prints.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msgs   []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed = true
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Logf(string, ...any) {}

func (r *recorder) output() string { return strings.Join(r.msgs, "\n") }

// run runs spec against a recorder on its own goroutine, as testing does,
// so that Fatalf can stop it.
func run(t *testing.T, spec func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		spec(r)
	}()
	<-done
	return r
}

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

var pool = es.Decider[Pool, Reserve, PoolEvent]{
	Initial: func() Pool { return Pool{} },
	Decide: func(p Pool, c Reserve) ([]PoolEvent, error) {
		if c.Seats > p.Free {
			return nil, fmt.Errorf("%w: %d seats asked, %d free", ErrSoldOut, c.Seats, p.Free)
		}
		if c.Seats == 0 {
			return nil, nil
		}
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
