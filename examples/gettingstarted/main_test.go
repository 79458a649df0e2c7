package main

// region: test imports
import (
	"bytes"
	"context"
	"database/sql"
	"testing"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
)

// endregion

import (
	"os"
	"strings"
)

// region: decider specs
// spec checks the decider's rules: given these events, when this command,
// then these events, or this error.
var spec = estest.ForDecider(decider)

func TestSeatsCanBeReservedOnceOnSale(t *testing.T) {
	spec.Given(t, SalesOpened{Seats: 10}).
		When(Reserve{ReservationID: "r-1", Seats: 4}).
		Then(SeatsReserved{ReservationID: "r-1", Seats: 4})
}

func TestNoSeatsAreReservedBeforeTheSale(t *testing.T) {
	spec.Given(t).
		When(Reserve{ReservationID: "r-1", Seats: 1}).
		ThenError(ErrNotOnSale)
}

func TestNoMoreSeatsAreReservedThanAreLeft(t *testing.T) {
	spec.Given(t, SalesOpened{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 4}).
		When(Reserve{ReservationID: "r-2", Seats: 7}).
		ThenError(ErrSoldOut)
}

// endregion

// region: projection spec
// The read model's spec runs the projection on a fresh in-memory SQLite
// store. Redelivered and AppliedTwice deliver each event again, as a
// subscription may after a crash: the seats left must come out the same.
func TestSeatsLeftCountsReservedSeats(t *testing.T) {
	reg := es.NewRegistry()
	register(reg)
	view := func(ctx context.Context, db *sql.DB) (int, error) { return left(ctx, db, "seats-1") }
	estest.Projection(t, reg, sqlitetest.ReadModel(t, seatsLeft(reg), view)).
		Given(estest.InStream("seats-1", SalesOpened{Seats: 10}, SeatsReserved{ReservationID: "r-1", Seats: 4})).
		Redelivered().
		AppliedTwice().
		Then(6)
}

// endregion

// TestRun runs the program on an in-memory store and checks what it
// prints: the page shows this output.
func TestRun(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var out bytes.Buffer
	if err := run(ctx, store, &out); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile("../../docs/getting-started.md")
	if err != nil {
		t.Fatal(err)
	}
	// The block after the marker line, without its fences.
	_, after, ok := strings.Cut(string(page), "<!-- output: examples/gettingstarted -->\n```\n")
	want, _, closed := strings.Cut(after, "```\n")
	if !ok || !closed {
		t.Fatal("docs/getting-started.md shows no output block after <!-- output: examples/gettingstarted -->")
	}
	if got := out.String(); got != want {
		t.Errorf("the program printed\n%s\nand the page shows\n%s", got, want)
	}
}
