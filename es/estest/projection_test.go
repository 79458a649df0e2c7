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
		AppliedTwice().
		Then(map[string]int{"pool-1": 7, "pool-2": 5})
}

func TestApplyingTwiceExposesANonIdempotentReadModel(t *testing.T) {
	reg := poolRegistry()
	for name, spec := range map[string]func(*estest.ProjectionSpec[map[string]int]) *estest.ProjectionSpec[map[string]int]{
		"redelivered":   (*estest.ProjectionSpec[map[string]int]).Redelivered,
		"applied twice": (*estest.ProjectionSpec[map[string]int]).AppliedTwice,
	} {
		naive := newFreeSeats(reg)
		naive.naive = true
		r := run(t, func(tb testing.TB) {
			spec(estest.Projection(tb, reg, naive).Given(SeatsAdded{Seats: 10})).Then(map[string]int{"test-1": 10})
		})
		if !r.Failed() || !strings.Contains(r.Messages(), "each "+name) || !strings.Contains(r.Messages(), "20") {
			t.Errorf("%s: failed=%v, message:\n%s", name, r.Failed(), r.Messages())
		}
	}
}

// checkpointed is a read model in the manner of the SQL consumers: it
// skips events at or below its checkpoint, and its projection code (apply)
// adds, so it is not idempotent.
type checkpointed struct {
	reg        *es.Registry
	checkpoint int64
	free       int
}

func (m *checkpointed) HandleEvent(ctx context.Context, e es.Event) error {
	if e.Position <= m.checkpoint {
		return nil
	}
	m.checkpoint = e.Position
	return m.ReapplyEvent(ctx, e)
}

func (m *checkpointed) ReapplyEvent(_ context.Context, e es.Event) error {
	v, err := m.reg.Decode(e)
	if a, ok := v.(SeatsAdded); ok {
		m.free += a.Seats
	}
	return err
}

func (m *checkpointed) View(context.Context) (int, error) { return m.free, nil }

// Redelivered checks the checkpoint, AppliedTwice the projection's code.
func TestRedeliveryAndDoubleApplicationAreDifferentChecks(t *testing.T) {
	reg := poolRegistry()
	estest.Projection(t, reg, &checkpointed{reg: reg}).Given(SeatsAdded{Seats: 2}, SeatsAdded{Seats: 3}).Redelivered().Then(5)
	r := run(t, func(tb testing.TB) {
		estest.Projection(tb, reg, &checkpointed{reg: reg}).Given(SeatsAdded{Seats: 2}, SeatsAdded{Seats: 3}).AppliedTwice().Then(5)
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "each applied twice, bypassing any checkpoint") || !strings.Contains(r.Messages(), "10,") {
		t.Fatalf("a projection that adds passed AppliedTwice: failed=%v\n%s", r.Failed(), r.Messages())
	}
}

func TestAProjectionSpecWithoutThenFails(t *testing.T) {
	reg := poolRegistry()
	r := run(t, func(tb testing.TB) {
		estest.Projection(tb, reg, newFreeSeats(reg)).Given(SeatsAdded{Seats: 10}).AppliedTwice()
	})
	if !r.Failed() || !strings.Contains(r.Messages(), "projection spec started at projection_test.go:") || len(r.Lines()) != 1 {
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
	if !r.Failed() || !strings.Contains(r.Messages(), "not registered") || len(r.Lines()) != 1 {
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
