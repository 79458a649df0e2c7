package estest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
)

// A seat hold: seats held for a buyer are released unless the buyer pays
// within ten minutes.

type (
	SeatsHeld struct {
		HoldID string `json:"hold_id"`
		Seats  int    `json:"seats"`
	}
	HoldPaid struct {
		HoldID string `json:"hold_id"`
	}
	HoldExpired struct {
		HoldID string `json:"hold_id"`
	}
	ReleaseSeats struct {
		HoldID string `json:"hold_id"`
		Seats  int    `json:"seats"`
	}
	IssueTickets struct {
		HoldID string `json:"hold_id"`
		Seats  int    `json:"seats"`
	}
)

type (
	HoldEvent   interface{ isHoldEvent() }
	HoldStarted struct {
		HoldID string `json:"hold_id"`
		Seats  int    `json:"seats"`
	}
	HoldEnded struct {
		Outcome string `json:"outcome"`
	}
)

func (HoldStarted) isHoldEvent() {}
func (HoldEnded) isHoldEvent()   {}

type Hold struct {
	ID      string
	Seats   int
	Outcome string
}

const holdFor = 10 * time.Minute

var holds = es.ProcessManager[Hold, HoldEvent]{
	Name: "hold",
	Correlate: func(msg any) string {
		switch m := msg.(type) {
		case SeatsHeld:
			return m.HoldID
		case HoldPaid:
			return m.HoldID
		case HoldExpired:
			return m.HoldID
		}
		return ""
	},
	Initial: func() Hold { return Hold{} },
	React: func(h Hold, msg any, now time.Time) (es.Reaction[HoldEvent], error) {
		var r es.Reaction[HoldEvent]
		expiry := func(id string) string { return es.DeadlineID("hold", id, "expiry") }
		switch m := msg.(type) {
		case SeatsHeld:
			if h.ID != "" {
				return r, nil
			}
			//lint:ignore S1016 an event is not a converted message: their fields must stay free to differ
			r.Events = []HoldEvent{HoldStarted{HoldID: m.HoldID, Seats: m.Seats}}
			r.Send = []es.Send{{Message: HoldExpired{HoldID: m.HoldID}, DeliverAt: now.Add(holdFor), ID: expiry(m.HoldID)}}
		case HoldPaid:
			if h.Outcome != "" {
				return r, nil
			}
			r.Events = []HoldEvent{HoldEnded{Outcome: "paid"}}
			r.Send = []es.Send{{Message: IssueTickets{HoldID: h.ID, Seats: h.Seats}}}
			r.Cancel = []string{expiry(h.ID)}
		case HoldExpired:
			if h.Outcome != "" {
				return r, nil
			}
			r.Events = []HoldEvent{HoldEnded{Outcome: "expired"}}
			r.Send = []es.Send{{Message: ReleaseSeats{HoldID: h.ID, Seats: h.Seats}}}
		}
		return r, nil
	},
	Evolve: func(h Hold, e HoldEvent) Hold {
		switch e := e.(type) {
		case HoldStarted:
			h.ID, h.Seats = e.HoldID, e.Seats
		case HoldEnded:
			h.Outcome = e.Outcome
		}
		return h
	},
}

func holdRegistry() *es.Registry {
	reg := es.NewRegistry()
	es.MustRegister[SeatsHeld](reg, "SeatsHeld")
	es.MustRegister[HoldPaid](reg, "HoldPaid")
	es.MustRegister[HoldExpired](reg, "HoldExpired")
	es.MustRegister[ReleaseSeats](reg, "ReleaseSeats")
	es.MustRegister[IssueTickets](reg, "IssueTickets")
	es.MustRegister[HoldStarted](reg, "HoldStarted")
	es.MustRegister[HoldEnded](reg, "HoldEnded")
	return reg
}

var holdSpec = estest.ForProcess(holdRegistry(), holds)

func TestHeldSeatsExpireAfterTenMinutes(t *testing.T) {
	holdSpec.Given(t).
		When(SeatsHeld{HoldID: "h-1", Seats: 2}).
		ThenNothingSent().
		ThenScheduled(10*time.Minute, HoldExpired{HoldID: "h-1"})
}

func TestAnUnpaidHoldReleasesItsSeatsWhenItExpires(t *testing.T) {
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}).
		WhenTimeElapses(10*time.Minute).
		Then(ReleaseSeats{HoldID: "h-1", Seats: 2}).
		ThenState("h-1", Hold{ID: "h-1", Seats: 2, Outcome: "expired"})
}

func TestAHoldDoesNotExpireEarly(t *testing.T) {
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}).
		WhenTimeElapses(9*time.Minute+59*time.Second).
		ThenNothingSent().
		ThenScheduled(time.Second, HoldExpired{HoldID: "h-1"})
}

func TestAPaidHoldIssuesTicketsAndNeverExpires(t *testing.T) {
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}).
		When(HoldPaid{HoldID: "h-1"}).
		Then(IssueTickets{HoldID: "h-1", Seats: 2}).
		ThenNoDeadlines()
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}, HoldPaid{HoldID: "h-1"}).
		WhenTimeElapses(time.Hour).
		ThenNothingSent()
}

func TestARedeliveredPaymentIssuesTicketsOnce(t *testing.T) {
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}, HoldPaid{HoldID: "h-1"}).
		When(HoldPaid{HoldID: "h-1"}).
		ThenNothingSent().
		ThenState("h-1", Hold{ID: "h-1", Seats: 2, Outcome: "paid"})
}

func TestTheHistoryLeavesAState(t *testing.T) {
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}).
		ThenState("h-1", Hold{ID: "h-1", Seats: 2})
}

// ThenNothingSent checks messages sent now, and only those: a process
// that records events and schedules a deadline has sent nothing.
func TestThenNothingSentIgnoresEventsAndDeadlines(t *testing.T) {
	r := run(t, func(tb testing.TB) {
		holdSpec.Given(tb).When(SeatsHeld{HoldID: "h-1", Seats: 2}).ThenNothingSent()
	})
	if r.Failed() {
		t.Fatalf("a hold that only recorded an event and scheduled its expiry: %s", r.Messages())
	}
	r = run(t, func(tb testing.TB) {
		holdSpec.Given(tb, SeatsHeld{HoldID: "h-1", Seats: 2}).When(HoldPaid{HoldID: "h-1"}).ThenNothingSent()
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "IssueTickets") {
		t.Fatalf("a payment that sent IssueTickets: failed=%v\n%s", r.Failed(), r.Messages())
	}
}

func TestAFailingProcessSpecShowsThePendingDeadlines(t *testing.T) {
	r := run(t, func(tb testing.TB) {
		holdSpec.Given(tb).
			When(SeatsHeld{HoldID: "h-1", Seats: 2}).
			ThenScheduled(5*time.Minute, HoldExpired{HoldID: "h-1"})
	})
	out := r.Messages()
	if !r.Failed() || !strings.Contains(out, "due in 5m0s") || !strings.Contains(out, "HoldExpired at +10m0s") {
		t.Fatalf("failed=%v, message:\n%s", r.Failed(), out)
	}
	r = run(t, func(tb testing.TB) {
		holdSpec.Given(tb, SeatsHeld{HoldID: "h-1", Seats: 2}).
			WhenTimeElapses(10 * time.Minute).
			Then(ReleaseSeats{HoldID: "h-1", Seats: 3})
	})
	if out := r.Messages(); !r.Failed() || !strings.Contains(out, "Seats:") || !strings.Contains(out, "deadlines fired: [HoldExpired]") {
		t.Fatalf("failed=%v, message:\n%s", r.Failed(), out)
	}
}

func TestEachActionIsCheckedOnItsOwn(t *testing.T) {
	holdSpec.Given(t, SeatsHeld{HoldID: "h-1", Seats: 2}, SeatsHeld{HoldID: "h-2", Seats: 1}).
		When(HoldPaid{HoldID: "h-2"}).
		Then(IssueTickets{HoldID: "h-2", Seats: 1}).
		WhenTimeElapses(10 * time.Minute).
		Then(ReleaseSeats{HoldID: "h-1", Seats: 2})
}

// ErrHoldUnknown is refused by strict, a process that does not accept a
// payment for a hold it has not seen.
var ErrHoldUnknown = errors.New("hold unknown")

type UnknownHoldError struct{ HoldID string }

func (e *UnknownHoldError) Error() string { return "hold " + e.HoldID + " unknown" }
func (e *UnknownHoldError) Unwrap() error { return ErrHoldUnknown }

var strictSpec = estest.ForProcess(holdRegistry(), func() es.ProcessManager[Hold, HoldEvent] {
	strict := holds
	strict.React = func(h Hold, msg any, now time.Time) (es.Reaction[HoldEvent], error) {
		if m, ok := msg.(HoldPaid); ok && h.ID == "" {
			return es.Reaction[HoldEvent]{}, &UnknownHoldError{HoldID: m.HoldID}
		}
		return holds.React(h, msg, now)
	}
	return strict
}())

func TestAPaymentForAnUnknownHoldIsRefused(t *testing.T) {
	strictSpec.Given(t).When(HoldPaid{HoldID: "h-9"}).ThenError(ErrHoldUnknown)
	var unknown *UnknownHoldError
	strictSpec.Given(t).When(HoldPaid{HoldID: "h-9"}).ThenErrorAs(&unknown)
	if unknown.HoldID != "h-9" {
		t.Fatalf("ThenErrorAs set %+v", unknown)
	}
	strictSpec.Given(t).When(HoldPaid{HoldID: "h-9"}).
		ThenErrorMatches(func(err error) bool { return strings.Contains(err.Error(), "h-9") })
}

func TestAFailingProcessSpecReportsMisuse(t *testing.T) {
	cases := map[string]struct {
		spec func(tb testing.TB)
		want string
	}{
		"no Then": {func(tb testing.TB) {
			holdSpec.Given(tb).When(SeatsHeld{HoldID: "h-1", Seats: 2})
		}, "process spec When(estest_test.SeatsHeld) at process_test.go:"},
		"no Then after the second action": {func(tb testing.TB) {
			holdSpec.Given(tb, SeatsHeld{HoldID: "h-1", Seats: 2}).
				When(HoldPaid{HoldID: "h-1"}).Then(IssueTickets{HoldID: "h-1", Seats: 2}).
				WhenTimeElapses(time.Hour)
		}, "process spec WhenTimeElapses(1h0m0s) at process_test.go:"},
		"nothing at all": {func(tb testing.TB) { holdSpec.Given(tb) }, "process spec started at process_test.go:"},
		"an action not checked before the next": {func(tb testing.TB) {
			holdSpec.Given(tb).When(SeatsHeld{HoldID: "h-1", Seats: 2}).When(HoldPaid{HoldID: "h-1"}).ThenNothingSent()
		}, "When(estest_test.HoldPaid) follows When(estest_test.SeatsHeld) at process_test.go:"},
		"no action":                  {func(tb testing.TB) { holdSpec.Given(tb).ThenNothingSent() }, "no When(message)"},
		"no action before ThenError": {func(tb testing.TB) { strictSpec.Given(tb).ThenError(ErrHoldUnknown) }, "no When(message)"},
		"success instead of an error": {func(tb testing.TB) {
			holdSpec.Given(tb).When(SeatsHeld{HoldID: "h-1", Seats: 2}).ThenError(ErrHoldUnknown)
		}, "want error hold unknown, got none"},
		"an error instead of messages": {func(tb testing.TB) {
			strictSpec.Given(tb).When(HoldPaid{HoldID: "h-9"}).ThenNothingSent()
		}, "want a reaction, got error: hold h-9 unknown"},
		"another error": {func(tb testing.TB) {
			var closed *ClosedError
			strictSpec.Given(tb).When(HoldPaid{HoldID: "h-9"}).ThenErrorAs(&closed)
		}, "want error as *estest_test.ClosedError, got error hold h-9 unknown"},
		"ThenError(nil)": {func(tb testing.TB) {
			holdSpec.Given(tb).When(SeatsHeld{HoldID: "h-1", Seats: 2}).ThenError(nil)
		}, "ThenError(nil)"},
		"a failing history": {func(tb testing.TB) {
			strictSpec.Given(tb, HoldPaid{HoldID: "h-9"}).When(SeatsHeld{HoldID: "h-1"}).ThenNothingSent()
		}, "given estest_test.HoldPaid"},
	}
	for name, c := range cases {
		r := run(t, c.spec)
		if !r.Failed() || !strings.Contains(r.Messages(), c.want) || len(r.Lines()) != 1 {
			t.Errorf("%s: failed=%v, want one message containing %q, got:\n%s", name, r.Failed(), c.want, r.Messages())
		}
	}
}
