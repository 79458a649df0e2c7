package estest_test

import (
	"fmt"
	"testing"
	"time"

	"esgo.dev/es/estest"
)

// A decider spec reads like the business rule it checks. In a test:
//
//	func TestCannotReserveMoreSeatsThanAreFree(t *testing.T) {
//		estest.Decider(t, pool).
//			Given(SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
//			When(Reserve{ReservationID: "r-2", Seats: 3}).
//			ThenError(ErrSoldOut)
//	}
//
// Here the spec runs against a recorder that prints whether it failed.
func ExampleDecider() {
	t := &printer{}
	estest.Decider(t, pool).
		Given(SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
		When(Reserve{ReservationID: "r-2", Seats: 3}).
		ThenError(ErrSoldOut)
	fmt.Println("failed:", t.failed)
	// Output:
	// failed: false
}

// A projection spec gives events and expects a view; DeliveredTwice hands
// each event over twice, as an at-least-once subscription may.
func ExampleProjection() {
	t := &printer{}
	reg := poolRegistry()
	estest.Projection(t, reg, newFreeSeats(reg)).
		Given(estest.InStream("pool-1", SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 3})).
		DeliveredTwice().
		Then(map[string]int{"pool-1": 7})
	fmt.Println("failed:", t.failed)
	// Output:
	// failed: false
}

// printer is a stand-in for *testing.T in examples.
type printer struct {
	testing.TB
	failed bool
}

func (p *printer) Helper() {}
func (p *printer) Fatalf(format string, args ...any) {
	p.failed = true
	fmt.Printf(format+"\n", args...)
}

// A process-manager spec moves a fake clock, so a deadline fires without
// sleeping. holds is a seat-hold process (process_test.go) that releases
// the seats unless the hold is paid within ten minutes.
func ExampleProcess() {
	t := &printer{}
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}).
		WhenTimeElapses(10 * time.Minute).
		Then(ReleaseSeats{HoldID: "h-1", Seats: 2})
	fmt.Println("failed:", t.failed)
	// Output:
	// failed: false
}
