package estest_test

import (
	"fmt"
	"testing"
	"time"

	"esgo.dev/es/estest"
)

// A decider spec reads like the business rule it checks. The specs of a
// decider are built once per test file, and each test starts one:
//
//	var spec = estest.ForDecider(pool)
//
//	func TestCannotReserveMoreSeatsThanAreFree(t *testing.T) {
//		spec.Given(t, SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
//			When(Reserve{ReservationID: "r-2", Seats: 3}).
//			ThenError(ErrSoldOut)
//	}
//
// Here the spec runs against a recorder that prints whether it failed.
func ExampleForDecider() {
	t := &printer{}
	spec := estest.ForDecider(pool)
	spec.Given(t, SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
		When(Reserve{ReservationID: "r-2", Seats: 3}).
		ThenError(ErrSoldOut)
	t.end()
	// Output:
	// failed: false
}

// A spec that never reaches a Then fails its test when the test ends,
// rather than pass without checking anything.
func ExampleDeciderSpec_forgotten() {
	t := &printer{}
	spec := estest.ForDecider(pool)
	spec.Given(t, SeatsAdded{Seats: 10}).When(Reserve{ReservationID: "r-1", Seats: 3})
	t.end()
	// Output:
	// decider spec started at example_test.go:39 never reached a Then…: end it with Then, ThenState, ThenNothing, ThenError, ThenErrorAs or ThenErrorMatches
	// failed: true
}

// A projection spec gives events and expects a view. AppliedTwice runs the
// read model's code twice on each event, as an at-least-once consumer may:
// the view must come out the same.
func ExampleProjection() {
	t := &printer{}
	reg := poolRegistry()
	estest.Projection(t, reg, newFreeSeats(reg)).
		Given(estest.InStream("pool-1", SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 3})).
		AppliedTwice().
		Then(map[string]int{"pool-1": 7})
	t.end()
	// Output:
	// failed: false
}

// A process-manager spec moves a fake clock, so a deadline fires without
// sleeping. holds is a seat-hold process (process_test.go) that releases
// the seats unless the hold is paid within ten minutes.
func ExampleForProcess() {
	t := &printer{}
	spec := estest.ForProcess(holdRegistry(), holds)
	spec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}).
		WhenTimeElapses(10 * time.Minute).
		Then(ReleaseSeats{HoldID: "h-1", Seats: 2})
	t.end()
	// Output:
	// failed: false
}

// printer is a stand-in for *testing.T in examples: it prints failures,
// and end runs the cleanups as the end of a test would.
type printer struct {
	testing.TB
	failed   bool
	cleanups []func()
}

func (p *printer) Helper()                           {}
func (p *printer) Failed() bool                      { return p.failed }
func (p *printer) Skipped() bool                     { return false }
func (p *printer) Cleanup(f func())                  { p.cleanups = append(p.cleanups, f) }
func (p *printer) Fatalf(format string, args ...any) { p.Errorf(format, args...) }
func (p *printer) Errorf(format string, args ...any) {
	p.failed = true
	fmt.Printf(format+"\n", args...)
}

func (p *printer) end() {
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	fmt.Println("failed:", p.failed)
}
