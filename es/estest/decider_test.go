package estest_test

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"esgo.dev/es/estest"
)

// spec is built once for the file and starts a spec in each test.
var spec = estest.ForDecider(pool)

func TestReservingFreeSeatsReservesThem(t *testing.T) {
	spec.Given(t, SeatsAdded{Seats: 10}).
		When(Reserve{ReservationID: "r-1", Seats: 4}).
		Then(SeatsReserved{ReservationID: "r-1", Seats: 4})
}

func TestReservingMoreSeatsThanFreeIsRefused(t *testing.T) {
	spec.Given(t, SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
		When(Reserve{ReservationID: "r-2", Seats: 3}).
		ThenError(ErrSoldOut)
}

func TestARefusalCarriesTheSeatsAskedAndFree(t *testing.T) {
	var short *ShortError
	spec.Given(t, SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 8}).
		When(Reserve{ReservationID: "r-2", Seats: 3}).
		ThenErrorAs(&short)
	if short.Asked != 3 || short.Free != 2 {
		t.Fatalf("ThenErrorAs set the target to %+v, want 3 asked and 2 free", short)
	}
}

func TestARefusalSaysHowManySeatsAreFree(t *testing.T) {
	spec.Given(t, SeatsAdded{Seats: 1}).
		When(Reserve{ReservationID: "r-1", Seats: 3}).
		ThenErrorMatches(func(err error) bool { return strings.Contains(err.Error(), "1 free") })
}

func TestReservingNoSeatsChangesNothing(t *testing.T) {
	spec.Given(t, SeatsAdded{Seats: 1}).When(Reserve{ReservationID: "r-1"}).ThenNothing()
}

func TestReservingLeavesTheRestFree(t *testing.T) {
	spec.Given(t, SeatsAdded{Seats: 10}).When(Reserve{ReservationID: "r-1", Seats: 4}).ThenState(Pool{Free: 6})
}

func TestSpecsOfOneDeciderRunInParallel(t *testing.T) {
	for _, seats := range []int{1, 2, 3, 4} {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			spec.Given(t, SeatsAdded{Seats: 4}).When(Reserve{ReservationID: "r", Seats: seats}).ThenState(Pool{Free: 4 - seats})
		})
	}
}

// A failing spec names the field that differs, with go-cmp's -want +got.
func TestFailingSpecNamesTheDifferingField(t *testing.T) {
	r := run(t, func(tb testing.TB) {
		spec.Given(tb, SeatsAdded{Seats: 10}).
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
	if strings.Contains(out, "never reached") {
		t.Errorf("a spec that failed in its Then was also reported as unfinished:\n%s", out)
	}
	t.Logf("a failing spec prints:\n%s", out)
}

func TestFailingSpecReportsUnexpectedOutcomes(t *testing.T) {
	var short *ShortError
	var notErr *Pool
	cases := map[string]struct {
		spec func(tb testing.TB)
		want string
	}{
		"error instead of events": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).Then(SeatsReserved{ReservationID: "r-1", Seats: 1})
		}, "want events, got error: sold out"},
		"events instead of an error": {func(tb testing.TB) {
			spec.Given(tb, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenError(ErrSoldOut)
		}, "want error sold out, got events"},
		"another error": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenError(errors.New("closed"))
		}, "want error closed, got error sold out: 1 seats asked, 0 free"},
		"events instead of an error as": {func(tb testing.TB) {
			spec.Given(tb, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenErrorAs(&short)
		}, "want error as *estest_test.ShortError, got events"},
		"an error not as": {func(tb testing.TB) {
			var closed *ClosedError
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenErrorAs(&closed)
		}, "want error as *estest_test.ClosedError, got error sold out"},
		"an error not matching": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenErrorMatches(func(error) bool { return false })
		}, "want error matching the predicate, got error sold out"},
		"events instead of nothing": {func(tb testing.TB) {
			spec.Given(tb, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenNothing()
		}, "want no events, got"},
		"wrong state": {func(tb testing.TB) {
			spec.Given(tb, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenState(Pool{Free: 2})
		}, "state differs"},
		"no command": {func(tb testing.TB) { spec.Given(tb).Then() }, "no When(command)"},
		"two commands": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1"}).When(Reserve{ReservationID: "r-2"}).ThenNothing()
		}, "When called twice"},
		"no Then": {func(tb testing.TB) {
			spec.Given(tb, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1})
		}, "decider spec started at decider_test.go:"},
		"ThenError(nil)": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1"}).ThenError(nil)
		}, "ThenError(nil): to expect success, use Then"},
		"a target errors.As would panic on": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenErrorAs(short)
		}, "the target must be a non-nil pointer"},
		"a target that is not an error": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenErrorAs(&notErr)
		}, "must point to an interface or to a type that implements error"},
		"a nil predicate": {func(tb testing.TB) {
			spec.Given(tb).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenErrorMatches(nil)
		}, "ThenErrorMatches(nil)"},
		"specs not made with ForDecider": {func(tb testing.TB) {
			var zero estest.DeciderSpecs[Pool, Reserve, PoolEvent]
			zero.Given(tb).When(Reserve{}).ThenNothing()
		}, "not made with estest.ForDecider"},
	}
	for name, c := range cases {
		r := run(t, c.spec)
		if !r.Failed() || !strings.Contains(r.Messages(), c.want) || len(r.Lines()) != 1 {
			t.Errorf("%s: failed=%v, want one message containing %q, got:\n%s", name, r.Failed(), c.want, r.Messages())
		}
	}
}

func TestForDeciderRefusesAnIncompleteDecider(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "Initial, Decide and Evolve") {
			t.Fatalf("recovered %v, want a panic naming the missing functions", r)
		}
	}()
	incomplete := pool
	incomplete.Evolve = nil
	estest.ForDecider(incomplete)
}

// A spec without a Then fails the subtest that started it, once, when the
// subtest ends, and no other: checked on real subtests, in a child
// process that runs TestChildSpecsInSubtests.
func TestASpecWithoutThenFailsTheSubtestThatStartedIt(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildSpecsInSubtests$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "ESTEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child passed:\n%s", out)
	}
	o := string(out)
	for _, want := range []string{
		"--- FAIL: TestChildSpecsInSubtests/forgotten ",
		"--- PASS: TestChildSpecsInSubtests/finished ",
		"--- FAIL: TestChildSpecsInSubtests/failing ",
		"--- SKIP: TestChildSpecsInSubtests/forgotten_in_a_skipped_test ",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("the child's output lacks %q:\n%s", want, o)
		}
	}
	if n := strings.Count(o, "never reached a Then"); n != 1 {
		t.Errorf("%d reports of a spec that never reached a Then, want 1:\n%s", n, o)
	}
	if n := strings.Count(o, "events differ"); n != 1 {
		t.Errorf("%d reports of the failing spec, want 1:\n%s", n, o)
	}
}

func TestChildSpecsInSubtests(t *testing.T) {
	if os.Getenv("ESTEST_CHILD") != "1" {
		t.Skip("run by TestASpecWithoutThenFailsTheSubtestThatStartedIt")
	}
	t.Run("forgotten", func(t *testing.T) {
		spec.Given(t, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1})
	})
	t.Run("finished", func(t *testing.T) {
		spec.Given(t, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).ThenState(Pool{Free: 1})
	})
	t.Run("failing", func(t *testing.T) {
		spec.Given(t, SeatsAdded{Seats: 2}).When(Reserve{ReservationID: "r-1", Seats: 1}).Then()
	})
	t.Run("forgotten in a skipped test", func(t *testing.T) {
		spec.Given(t).When(Reserve{ReservationID: "r-1"})
		t.Skip("skipped before its Then")
	})
}
