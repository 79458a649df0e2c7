package estest_test

import (
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

func TestHeldSeatsExpireAfterTenMinutes(t *testing.T) {
	estest.Process(t, holdRegistry(), holds).
		When(SeatsHeld{HoldID: "h-1", Seats: 2}).
		ThenNothing().
		ThenScheduled(10*time.Minute, HoldExpired{HoldID: "h-1"})
}

func TestAnUnpaidHoldReleasesItsSeatsWhenItExpires(t *testing.T) {
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}).
		WhenTimeElapses(10*time.Minute).
		Then(ReleaseSeats{HoldID: "h-1", Seats: 2}).
		ThenState("h-1", Hold{ID: "h-1", Seats: 2, Outcome: "expired"})
}

func TestAHoldDoesNotExpireEarly(t *testing.T) {
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}).
		WhenTimeElapses(9*time.Minute+59*time.Second).
		ThenNothing().
		ThenScheduled(time.Second, HoldExpired{HoldID: "h-1"})
}

func TestAPaidHoldIssuesTicketsAndNeverExpires(t *testing.T) {
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}).
		When(HoldPaid{HoldID: "h-1"}).
		Then(IssueTickets{HoldID: "h-1", Seats: 2}).
		ThenNoDeadlines()
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}, HoldPaid{HoldID: "h-1"}).
		WhenTimeElapses(time.Hour).
		ThenNothing()
}

func TestARedeliveredPaymentIssuesTicketsOnce(t *testing.T) {
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}, HoldPaid{HoldID: "h-1"}).
		When(HoldPaid{HoldID: "h-1"}).
		ThenNothing()
}

func TestAFailingProcessSpecShowsThePendingDeadlines(t *testing.T) {
	r := run(t, func(tb testing.TB) {
		estest.Process(tb, holdRegistry(), holds).
			When(SeatsHeld{HoldID: "h-1", Seats: 2}).
			ThenScheduled(5*time.Minute, HoldExpired{HoldID: "h-1"})
	})
	out := r.Messages()
	if !r.Failed() || !strings.Contains(out, "due in 5m0s") || !strings.Contains(out, "HoldExpired at +10m0s") {
		t.Fatalf("failed=%v, message:\n%s", r.Failed(), out)
	}
	r = run(t, func(tb testing.TB) {
		estest.Process(tb, holdRegistry(), holds).
			Given(SeatsHeld{HoldID: "h-1", Seats: 2}).
			WhenTimeElapses(10 * time.Minute).
			Then(ReleaseSeats{HoldID: "h-1", Seats: 3})
	})
	if out := r.Messages(); !r.Failed() || !strings.Contains(out, "Seats:") || !strings.Contains(out, "deadlines fired: [HoldExpired]") {
		t.Fatalf("failed=%v, message:\n%s", r.Failed(), out)
	}
}

func TestEachActionIsCheckedOnItsOwn(t *testing.T) {
	estest.Process(t, holdRegistry(), holds).
		Given(SeatsHeld{HoldID: "h-1", Seats: 2}, SeatsHeld{HoldID: "h-2", Seats: 1}).
		When(HoldPaid{HoldID: "h-2"}).
		Then(IssueTickets{HoldID: "h-2", Seats: 1}).
		WhenTimeElapses(10 * time.Minute).
		Then(ReleaseSeats{HoldID: "h-1", Seats: 2})
}
