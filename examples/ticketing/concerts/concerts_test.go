package concerts_test

import (
	"context"
	"database/sql"
	"errors"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlite/sqlitetest"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/reservations"
)

// spec makes the specs of the concert decider, one per test.
var spec = estest.ForDecider(concerts.Decider())

var (
	now      = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	startsAt = time.Date(2026, 7, 12, 19, 0, 0, 0, time.UTC)
	vip      = concerts.TicketType{Name: "VIP", Price: money.Money{Amount: 19999, Currency: "PLN"}}
	standing = concerts.TicketType{Name: "Standing", Price: money.Money{Amount: 8950, Currency: "PLN"}}
)

func create() concerts.CreateConcert {
	return concerts.CreateConcert{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni", StartsAt: startsAt,
		Venue: "Torwar, Warsaw", TicketTypes: []concerts.TicketType{vip, standing},
		Capacity: map[string]int{"VIP": 50, "Standing": 2000}, OrganizerID: "org-1", At: now}
}

func created() concerts.ConcertCreated {
	return concerts.ConcertCreated{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni", StartsAt: startsAt,
		Venue: "Torwar, Warsaw", TicketTypes: []concerts.TicketType{vip, standing}, OrganizerID: "org-1"}
}

func TestAConcertIsCreatedWithArtistVenueDateAndPricedTicketTypes(t *testing.T) {
	spec.Given(t).When(create()).Then(created())
}

func TestAConcertIsCreatedOnce(t *testing.T) {
	spec.Given(t, created()).When(create()).ThenError(concerts.ErrConcertExists)
}

func TestAConcertNeedsAnArtist(t *testing.T) {
	c := create()
	c.Artist = " "
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestAConcertNeedsAnOrganizer(t *testing.T) {
	c := create()
	c.OrganizerID = ""
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestAConcertNeedsTicketTypes(t *testing.T) {
	c := create()
	c.TicketTypes, c.Capacity = nil, nil
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestEveryTicketTypeNeedsACapacity(t *testing.T) {
	c := create()
	c.Capacity = map[string]int{"VIP": 50}
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestEveryCapacityIsForAPricedTicketType(t *testing.T) {
	c := create()
	c.Capacity = map[string]int{"VIP": 50, "Standing": 2000, "Balcony": 10}
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestATicketTypeIsNamedOnce(t *testing.T) {
	c := create()
	c.TicketTypes = []concerts.TicketType{vip, standing, {Name: "VIP", Price: money.Money{Amount: 100, Currency: "PLN"}}}
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestATicketTypeNameFitsACartPath(t *testing.T) {
	for _, name := range []string{strings.Repeat("x", concerts.MaxTicketTypeName+1), "VIP\nlounge", "VIP\u0085", "VIP\xff", "  "} {
		c := create()
		c.TicketTypes = []concerts.TicketType{{Name: name, Price: vip.Price}, standing}
		c.Capacity = map[string]int{name: 50, "Standing": 2000}
		spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
	}
	c := create()
	long := concerts.TicketType{Name: strings.Repeat("ż", concerts.MaxTicketTypeName/2), Price: vip.Price}
	c.TicketTypes = []concerts.TicketType{long, standing}
	c.Capacity = map[string]int{long.Name: 50, "Standing": 2000}
	want := created()
	want.TicketTypes = c.TicketTypes
	spec.Given(t).When(c).Then(want)
}

func TestAConcertIsPricedInOneCurrency(t *testing.T) {
	c := create()
	c.TicketTypes = []concerts.TicketType{vip, {Name: "Standing", Price: money.Money{Amount: 2000, Currency: "EUR"}}}
	spec.Given(t).When(c).ThenError(money.ErrCurrencyMismatch)
}

func TestAPriceNeedsAValidCurrency(t *testing.T) {
	c := create()
	c.TicketTypes = []concerts.TicketType{{Name: "VIP", Price: money.Money{Amount: 100, Currency: "zł"}}, standing}
	spec.Given(t).When(c).ThenError(money.ErrInvalidCurrency)
}

func TestAPriceIsInAnActiveISO4217Currency(t *testing.T) {
	c := create()
	zorkmids := money.Money{Amount: 100, Currency: "ZZZ"}
	c.TicketTypes = []concerts.TicketType{{Name: "VIP", Price: zorkmids}, {Name: "Standing", Price: zorkmids}}
	spec.Given(t).When(c).ThenError(money.ErrInvalidCurrency)
}

func TestAPriceIsPositive(t *testing.T) {
	c := create()
	c.TicketTypes = []concerts.TicketType{{Name: "VIP", Price: money.Money{Amount: 0, Currency: "PLN"}}, standing}
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
}

func TestAPriceIsAtMostAMillion(t *testing.T) {
	c := create()
	c.TicketTypes = []concerts.TicketType{{Name: "VIP", Price: money.Money{Amount: concerts.MaxPrice + 1, Currency: "PLN"}}, standing}
	spec.Given(t).When(c).ThenError(concerts.ErrInvalidConcert)
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{{Name: "VIP", Price: money.Money{Amount: 1 << 62, Currency: "PLN"}}}}).
		ThenError(concerts.ErrInvalidConcert)
	dearest := concerts.TicketType{Name: "VIP", Price: money.Money{Amount: concerts.MaxPrice, Currency: "PLN"}}
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{dearest}}).
		Then(concerts.TicketTypesUpdated{ConcertID: "c1", TicketTypes: []concerts.TicketType{dearest, standing}})
}

func TestAConcertCannotBeAnnouncedInThePast(t *testing.T) {
	c := create()
	c.StartsAt = now.Add(-time.Hour)
	spec.Given(t).When(c).ThenError(concerts.ErrInThePast)
}

func TestAnUpdateRecordsWhatChangedNotTheForm(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "Summer Night II", Artist: "Kwiat Jabłoni", StartsAt: startsAt, Venue: "Stadion Narodowy", At: now}).
		Then(concerts.ConcertRenamed{ConcertID: "c1", Name: "Summer Night II"},
			concerts.ConcertMoved{ConcertID: "c1", Venue: "Stadion Narodowy"})
}

func TestARescheduledConcertSaysWhenItWasToStart(t *testing.T) {
	later := startsAt.Add(24 * time.Hour)
	spec.Given(t, created()).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni", StartsAt: later, Venue: "Torwar, Warsaw", At: now}).
		Then(concerts.ConcertRescheduled{ConcertID: "c1", StartsAt: later, PreviousStartsAt: startsAt})
}

func TestAnotherArtistIsRecordedAsSuch(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "Summer Night", Artist: "Dawid Podsiadło", StartsAt: startsAt, Venue: "Torwar, Warsaw", At: now}).
		Then(concerts.ArtistChanged{ConcertID: "c1", Artist: "Dawid Podsiadło"})
}

func TestAStreamWithTheFormerConcertUpdatedStillFolds(t *testing.T) {
	later := startsAt.Add(time.Hour)
	spec.Given(t, created(),
		concerts.ConcertUpdated{ConcertID: "c1", Name: "Summer Night II", Artist: "Kwiat Jabłoni", StartsAt: later, Venue: "Stadion"}).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "Summer Night II", Artist: "Kwiat Jabłoni", StartsAt: later, Venue: "Stadion", At: now}).
		ThenNothing()
}

func TestAnUpdateThatChangesNothingRecordsNothing(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni", StartsAt: startsAt, Venue: "Torwar, Warsaw", At: now}).
		ThenNothing()
}

func TestACancelledConcertCannotBeUpdated(t *testing.T) {
	spec.Given(t, created(), concerts.ConcertCancelled{ConcertID: "c1"}).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "X", Artist: "Y", StartsAt: startsAt, Venue: "Z", At: now}).
		ThenError(concerts.ErrConcertCancelled)
}

func TestAnUnknownConcertCannotBeUpdated(t *testing.T) {
	spec.Given(t).
		When(concerts.UpdateConcert{ConcertID: "c1", Name: "X", Artist: "Y", StartsAt: startsAt, Venue: "Z", At: now}).
		ThenError(concerts.ErrNoConcert)
}

func TestTicketPricesCanChange(t *testing.T) {
	cheaper := concerts.TicketType{Name: "VIP", Price: money.Money{Amount: 14999, Currency: "PLN"}}
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{cheaper}}).
		Then(concerts.TicketTypesUpdated{ConcertID: "c1", TicketTypes: []concerts.TicketType{cheaper, standing}})
}

func TestTicketTypesOfACancelledConcertCannotChange(t *testing.T) {
	spec.Given(t, created(), concerts.ConcertCancelled{ConcertID: "c1"}).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{vip}}).
		ThenError(concerts.ErrConcertCancelled)
}

func TestOnlyExistingTicketTypesCanChange(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{{Name: "Balcony", Price: vip.Price}}}).
		ThenError(concerts.ErrUnknownTicketType)
}

func TestAnUpdateNamesEachTicketTypeOnce(t *testing.T) {
	cheaper := concerts.TicketType{Name: "VIP", Price: money.Money{Amount: 14999, Currency: "PLN"}}
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{cheaper, vip}}).
		ThenError(concerts.ErrInvalidConcert)
}

func TestAnUpdatedTicketTypeHasAName(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{{Name: "", Price: vip.Price}}}).
		ThenError(concerts.ErrInvalidConcert)
}

func TestANewPriceKeepsTheConcertsCurrency(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.UpdateTicketTypes{ConcertID: "c1", TicketTypes: []concerts.TicketType{{Name: "VIP", Price: money.Money{Amount: 5000, Currency: "EUR"}}}}).
		ThenError(money.ErrCurrencyMismatch)
}

func TestAConcertCanBeCancelled(t *testing.T) {
	spec.Given(t, created()).
		When(concerts.CancelConcert{ConcertID: "c1", Reason: "illness"}).
		Then(concerts.ConcertCancelled{ConcertID: "c1", Reason: "illness"})
}

func TestACancelledConcertCannotBeCancelledAgain(t *testing.T) {
	spec.Given(t, created(), concerts.ConcertCancelled{ConcertID: "c1"}).
		When(concerts.CancelConcert{ConcertID: "c1"}).
		ThenError(concerts.ErrConcertCancelled)
}

func registry(t *testing.T) *es.Registry {
	t.Helper()
	reg := es.NewRegistry()
	if err := concerts.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestEventSchemas(t *testing.T) {
	// Includes testdata/events/concerts.ConcertCreated.v1.json: prices as
	// decimal strings, upcast to money in minor units.
	estest.GoldenSchema(t, registry(t), "testdata/events")
}

func TestAVersion1ConcertCreatedReadsAsMoney(t *testing.T) {
	reg := registry(t)
	v, err := reg.DecodeData("concerts.ConcertCreated", 1,
		[]byte(`{"concert_id":"c0","name":"N","artist":"A","starts_at":"2025-07-12T19:00:00Z","venue":"V","ticket_types":[{"name":"VIP","price":"199.99","capacity":50}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := v.(concerts.ConcertCreated).TicketTypes[0].Price
	if got != (money.Money{Amount: 19999, Currency: "PLN"}) {
		t.Fatalf("price %v, want 199.99 PLN", got)
	}
}

func fullRegistry(t *testing.T) *es.Registry {
	reg := registry(t)
	if err := reservations.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func detailsOf(t *testing.T, reg *es.Registry) estest.ReadModel[concerts.Details] {
	return sqlitetest.ReadModel(t, sqlite.FromPortable(concerts.DetailsProjection(reg)), func(ctx context.Context, db *sql.DB) (concerts.Details, error) {
		return concerts.DetailsOf(ctx, db, "c1")
	})
}

// The seats are the reservations module's: the concert details project
// the concert streams only, and the inventory's events change nothing
// there (package web shows the seats from reservations.ConcertReservationsOf).
func TestConcertDetailsLeaveTheSeatsToTheReservationsModule(t *testing.T) {
	reg := fullRegistry(t)
	estest.Projection(t, reg, detailsOf(t, reg)).
		Given(
			estest.InStream("concert-c1", created()),
			estest.InStream("inventory-c1",
				reservations.InventoryOpened{ConcertID: "c1", Capacity: map[string]int{"VIP": 50, "Standing": 2000}},
				reservations.SeatsReserved{ConcertID: "c1", ReservationID: "r1", UserID: "u1", Seats: map[string]int{"VIP": 2, "Standing": 1}, ExpiresAt: now},
				reservations.CapacityChanged{ConcertID: "c1", TicketType: "VIP", Capacity: 40},
			),
		).
		Redelivered().AppliedTwice().
		Then(concerts.Details{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni", StartsAt: startsAt, Venue: "Torwar, Warsaw",
			TicketTypes: []concerts.TicketTypeDetails{{Name: "VIP", Price: vip.Price}, {Name: "Standing", Price: standing.Price}}})
}

// TestTheModuleReadsNoOtherModulesEvents: the package's code imports no
// other module of the example, so it cannot decode their events (its
// tests may, to show that they change nothing).
func TestTheModuleReadsNoOtherModulesEvents(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "esgo.dev/examples/ticketing/") && path != "esgo.dev/examples/ticketing/money" {
				t.Errorf("%s imports %s: modules talk through messages, not each other's events", name, path)
			}
		}
	}
}

func TestConcertDetailsFollowUpdatesAndCancellation(t *testing.T) {
	reg := fullRegistry(t)
	cheaper := concerts.TicketType{Name: "VIP", Price: money.Money{Amount: 14999, Currency: "PLN"}}
	estest.Projection(t, reg, detailsOf(t, reg)).
		Given(
			estest.InStream("concert-c1", created(),
				concerts.ConcertRenamed{ConcertID: "c1", Name: "Summer Night II"},
				concerts.ConcertMoved{ConcertID: "c1", Venue: "Stadion"},
				concerts.ConcertRescheduled{ConcertID: "c1", StartsAt: startsAt.Add(time.Hour), PreviousStartsAt: startsAt},
				concerts.ArtistChanged{ConcertID: "c1", Artist: "Dawid Podsiadło"},
				concerts.TicketTypesUpdated{ConcertID: "c1", TicketTypes: []concerts.TicketType{cheaper, standing}},
				concerts.ConcertCancelled{ConcertID: "c1"}),
		).
		Redelivered().AppliedTwice().
		Then(concerts.Details{ConcertID: "c1", Name: "Summer Night II", Artist: "Dawid Podsiadło", StartsAt: startsAt.Add(time.Hour), Venue: "Stadion", Cancelled: true,
			TicketTypes: []concerts.TicketTypeDetails{{Name: "VIP", Price: cheaper.Price}, {Name: "Standing", Price: standing.Price}}})
}

func TestAvailableConcertsLeaveOutCancelledAndPastOnes(t *testing.T) {
	reg := registry(t)
	other := created()
	other.ConcertID, other.Name, other.StartsAt = "c2", "Autumn", startsAt.Add(-24*time.Hour)
	past := created()
	past.ConcertID, past.StartsAt = "c3", now.Add(-time.Hour)
	cancelled := created()
	cancelled.ConcertID = "c4"
	rm := sqlitetest.ReadModel(t, sqlite.FromPortable(concerts.AvailableProjection(reg)), func(ctx context.Context, db *sql.DB) ([]concerts.Available, error) {
		return concerts.AvailableConcerts(ctx, db, now)
	})
	estest.Projection(t, reg, rm).
		Given(estest.InStream("concert-c1", created()), estest.InStream("concert-c2", other), estest.InStream("concert-c3", past),
			estest.InStream("concert-c4", cancelled, concerts.ConcertCancelled{ConcertID: "c4"}),
			estest.InStream("concert-c2", concerts.ConcertUpdated{ConcertID: "c2", Name: "Autumn", Artist: "Kwiat Jabłoni", StartsAt: other.StartsAt, Venue: "Spodek"})).
		Redelivered().AppliedTwice().
		Then([]concerts.Available{
			{ConcertID: "c2", Name: "Autumn", Artist: "Kwiat Jabłoni", StartsAt: other.StartsAt, Venue: "Spodek"},
			{ConcertID: "c1", Name: "Summer Night", Artist: "Kwiat Jabłoni", StartsAt: startsAt, Venue: "Torwar, Warsaw"},
		})
}

func TestTicketsAreOnSaleUntilTheConcertStarts(t *testing.T) {
	evolve := concerts.Decider().Evolve
	c := evolve(concerts.Concert{}, created())
	if err := c.OnSale(startsAt.Add(-time.Nanosecond)); err != nil {
		t.Errorf("just before the start: %v", err)
	}
	for _, at := range []time.Time{startsAt, startsAt.Add(time.Hour)} {
		if err := c.OnSale(at); !errors.Is(err, concerts.ErrConcertStarted) {
			t.Errorf("at %s: %v, want ErrConcertStarted", at, err)
		}
	}
	if err := evolve(c, concerts.ConcertCancelled{ConcertID: "c1"}).OnSale(now); !errors.Is(err, concerts.ErrConcertCancelled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := (concerts.Concert{}).OnSale(now); !errors.Is(err, concerts.ErrNoConcert) {
		t.Errorf("no concert: %v", err)
	}
}
