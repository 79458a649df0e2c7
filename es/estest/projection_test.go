package estest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
)

// freeSeats is a read model: free seats per pool stream. It remembers the
// last version it applied per stream, so a redelivered event is skipped.
type freeSeats struct {
	reg     *es.Registry
	free    map[string]int
	applied map[string]int64
	naive   bool // when set, it forgets to deduplicate
}

func newFreeSeats(reg *es.Registry) *freeSeats {
	return &freeSeats{reg: reg, free: map[string]int{}, applied: map[string]int64{}}
}

func (m *freeSeats) HandleEvent(_ context.Context, e es.Event) error {
	if !m.naive && e.Version <= m.applied[e.StreamID] {
		return nil
	}
	m.applied[e.StreamID] = e.Version
	v, err := m.reg.Decode(e)
	if err != nil {
		return err
	}
	switch v := v.(type) {
	case SeatsAdded:
		m.free[e.StreamID] += v.Seats
	case SeatsReserved:
		m.free[e.StreamID] -= v.Seats
	}
	return nil
}

func (m *freeSeats) View(context.Context) (map[string]int, error) { return m.free, nil }

func TestFreeSeatsCountsPerPool(t *testing.T) {
	reg := poolRegistry()
	estest.Projection(t, reg, newFreeSeats(reg)).
		Given(
			estest.InStream("pool-1", SeatsAdded{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 3}),
			estest.InStream("pool-2", SeatsAdded{Seats: 5}),
		).
		DeliveredTwice().
		Then(map[string]int{"pool-1": 7, "pool-2": 5})
}

func TestRedeliveryExposesANonIdempotentReadModel(t *testing.T) {
	reg := poolRegistry()
	naive := newFreeSeats(reg)
	naive.naive = true
	r := run(t, func(tb testing.TB) {
		estest.Projection(tb, reg, naive).Given(SeatsAdded{Seats: 10}).DeliveredTwice().Then(map[string]int{"test-1": 10})
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "each delivered twice") || !strings.Contains(r.Messages(), "20") {
		t.Fatalf("failed=%v, message:\n%s", r.Failed(), r.Messages())
	}
}

func TestFoldReadModel(t *testing.T) {
	reg := poolRegistry()
	total := estest.Fold(reg, 0, func(n int, _ es.Event, v any) int {
		if a, ok := v.(SeatsAdded); ok {
			n += a.Seats
		}
		return n
	})
	estest.Projection(t, reg, total).Given(SeatsAdded{Seats: 2}, SeatsReserved{Seats: 1}, SeatsAdded{Seats: 3}).Then(5)
}

func TestProjectionSpecReportsUnregisteredEvents(t *testing.T) {
	type Stray struct{}
	reg := poolRegistry()
	r := run(t, func(tb testing.TB) {
		estest.Projection(tb, reg, newFreeSeats(reg)).Given(Stray{}).Then(nil)
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "not registered") {
		t.Fatalf("failed=%v, message:\n%s", r.Failed(), r.Messages())
	}
}

func TestFakeClock(t *testing.T) {
	c := estest.NewFakeClock(mustTime("2026-05-01T10:00:00Z"))
	c.Advance(90 * 60e9)
	if got := c.Now(); !got.Equal(mustTime("2026-05-01T11:30:00Z")) {
		t.Fatalf("Now = %v", got)
	}
	c.Set(mustTime("2027-01-01T00:00:00+02:00"))
	if got := c.Now(); got.Location().String() != "UTC" || !got.Equal(mustTime("2026-12-31T22:00:00Z")) {
		t.Fatalf("Now = %v", got)
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
