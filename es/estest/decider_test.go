package estest_test

import (
	"strings"
	"testing"

	"esgo.dev/es/estest"
)

func TestReservingFreeSeatsReservesThem(t *testing.T) {
	estest.Decider(t, pool).
		Given(SeatsAdded{Seats: 10}).
		When(Reserve{ReservationID: "r-1", Seats: 4}).
		Then(SeatsReserved{ReservationID: "r-1", Seats: 4})
}

func TestReservingMoreSeatsThanFreeIsRefused(t *testing.T) {
	estest.Decider(t, pool).
		Given(SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
		When(Reserve{ReservationID: "r-2", Seats: 3}).
		ThenError(ErrSoldOut)
}

func TestReservingNoSeatsChangesNothing(t *testing.T) {
	estest.Decider(t, pool).Given(SeatsAdded{Seats: 1}).When(Reserve{ReservationID: "r-1"}).ThenNothing()
}

func TestReservingLeavesTheRestFree(t *testing.T) {
	estest.Decider(t, pool).Given(SeatsAdded{Seats: 10}).When(Reserve{ReservationID: "r-1", Seats: 4}).ThenState(Pool{Free: 6})
}

// A failing spec names the field that differs, with go-cmp's -want +got.
func TestFailingSpecNamesTheDifferingField(t *testing.T) {
	r := run(t, func(tb testing.TB) {
		estest.Decider(tb, pool).
			Given(SeatsAdded{Seats: 10}).
			When(Reserve{ReservationID: "r-1", Seats: 4}).
			Then(SeatsReserved{ReservationID: "r-1", Seats: 5})
	})
	out := r.Messages()
	if !r.Failed() {
		t.Fatal("a spec expecting the wrong event passed")
	}
	for _, want := range []string{"events differ (-want +got)", "Seats:", "5", "4", "given:", "SeatsAdded", "when:", "Reserve"} {
		if !strings.Contains(out, want) {
			t.Errorf("failure message lacks %q:\n%s", want, out)
		}
	}
	var minus, plus string
	for _, line := range strings.Split(out, "\n") {
		switch f := strings.Fields(line); {
		case len(f) > 0 && f[0] == "-":
			minus = strings.Join(f[1:], " ")
		case len(f) > 0 && f[0] == "+":
			plus = strings.Join(f[1:], " ")
		}
	}
	if minus != "Seats: 5," || plus != "Seats: 4," {
		t.Errorf("the -want/+got lines should name the Seats field: %q / %q in\n%s", minus, plus, out)
	}
	t.Logf("a failing spec prints:\n%s", out)
}

func TestFailingSpecReportsUnexpectedOutcomes(t *testing.T) {
	cases := map[string]struct {
		spec func(tb testing.TB)
		want string
	}{
		"error instead of events": {func(tb testing.TB) {
			estest.Decider(tb, pool).When(Reserve{ReservationID: "r-1", Seats: 1}).Then(SeatsReserved{ReservationID: "r-1", Seats: 1})
		}, "want events, got error: sold out"},
		"events instead of an error": {func(tb testing.TB) {
			estest.Decider(tb, pool).Given(SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenError(ErrSoldOut)
		}, "want error sold out, got events"},
		"events instead of nothing": {func(tb testing.TB) {
			estest.Decider(tb, pool).Given(SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenNothing()
		}, "want no events, got"},
		"wrong state": {func(tb testing.TB) {
			estest.Decider(tb, pool).Given(SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenState(Pool{Free: 2})
		}, "state differs"},
		"no command": {func(tb testing.TB) { estest.Decider(tb, pool).Then() }, "no When(command)"},
	}
	for name, c := range cases {
		r := run(t, c.spec)
		if !r.Failed() || !strings.Contains(r.Messages(), c.want) {
			t.Errorf("%s: failed=%v, message %q lacks %q", name, r.Failed(), r.Messages(), c.want)
		}
	}
}
