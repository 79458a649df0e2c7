package app_test

import (
	"context"
	"database/sql"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/stdlib"

	"esgo.dev/es"
	"esgo.dev/es/estest"
	"esgo.dev/es/postgres"
	"esgo.dev/es/postgres/pgtest"
	"esgo.dev/es/sqlite"
	"esgo.dev/es/sqlprojection"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/mailer"
	"esgo.dev/examples/ticketing/users"
)

// TestReadModelsArePortable: the events of a short story, stored and
// projected on SQLite by the app, are projected on PostgreSQL by the very
// same projections, and every read model's query answers the same on both.
func TestReadModelsArePortable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	store, err := sqlite.OpenMemory(ctx, sqlite.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() }) // after the app stops: cleanups run last first
	folder, err := mailer.NewFolder(t.TempDir(), "tickets@ticketing.example")
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Clock: estest.NewFakeClock(start),
		RelayPollInterval: 10 * time.Millisecond, Mailer: folder})
	if err != nil {
		t.Fatal(err)
	}
	// Stop the application as soon as the test returns.
	defer run(t, a)()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(a.CreateConcert(ctx, es.NewID(), concert("warsaw", 100)))
	must(a.CreateConcert(ctx, es.NewID(), concert("krakow", 50)))
	must(a.UpdateTicketTypes(ctx, es.NewID(), concerts.UpdateTicketTypes{ConcertID: "warsaw",
		TicketTypes: []concerts.TicketType{{Name: "GA", Price: money.Money{Amount: 27000, Currency: "PLN"}}},
		Capacity:    map[string]int{"GA": 120}}))
	must(a.RegisterUser(ctx, "ala", "ala@example.com", "Ala", "correct horse", users.Customer))
	must(a.RegisterUser(ctx, "ola", "ola@example.com", "Ola", "battery staple", users.Organizer))
	must(a.AddToCart(ctx, es.NewID(), "ala", "warsaw", "GA", 2))
	must(a.AddToCart(ctx, es.NewID(), "ala", "krakow", "GA", 1))
	must(a.ChooseDelivery(ctx, es.NewID(), "ala", carts.Delivery{Method: carts.ByEmail, Email: "ala@example.com"}))
	placed, err := a.Checkout(ctx, es.NewID(), "ala")
	must(err)
	for _, id := range placed {
		waitOrder(t, a, id, func(o orders.Order) bool { return o.Status == orders.Completed })
	}
	must(a.AddToCart(ctx, es.NewID(), "ola", "warsaw", "GA", 3)) // an open cart
	rid := es.NewID()
	must(a.Reserve(ctx, rid, reservations.Reserve{ConcertID: "krakow", ReservationID: rid, UserID: "ola", Seats: map[string]int{"GA": 4}}))
	must(a.CancelConcert(ctx, es.NewID(), concerts.CancelConcert{ConcertID: "krakow", Reason: "illness"}))
	waitOrder(t, a, placed["krakow"], func(o orders.Order) bool { return o.Status == orders.Cancelled && o.RefundsDone == 1 })
	// The tickets' deliveries, invoices and credit notes follow on their own.
	waitFor(t, func() bool { return due(t, store, start) == 0 })
	must(a.WaitForReadModels(ctx))

	// The same events on PostgreSQL, projected by the same projections.
	pg := pgtest.NewStore(t, postgres.Config{})
	all, err := es.Collect(store.ReadAll(ctx, es.AllQuery{}))
	must(err)
	for chunk := range slices.Chunk(all, 50) {
		var appends []es.StreamAppend
		for _, e := range chunk {
			d := es.EventData{ID: e.ID, Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata}
			if n := len(appends); n > 0 && appends[n-1].StreamID == e.StreamID {
				appends[n-1].Events = append(appends[n-1].Events, d)
				continue
			}
			if slices.ContainsFunc(appends, func(sa es.StreamAppend) bool { return sa.StreamID == e.StreamID }) {
				_, err := pg.Append(ctx, appends...)
				must(err)
				appends = nil
			}
			appends = append(appends, es.StreamAppend{StreamID: e.StreamID, Expected: es.AnyVersion, Events: []es.EventData{d}})
		}
		_, err := pg.Append(ctx, appends...)
		must(err)
	}
	pgEvents, err := es.Collect(pg.ReadAll(ctx, es.AllQuery{}))
	must(err)
	reg := a.Registry()
	for _, p := range append([]sqlprojection.Projection{
		concerts.DetailsProjection(reg), concerts.AvailableProjection(reg),
		carts.ContentsProjection(reg), carts.SummaryProjection(reg),
		reservations.UserReservationsProjection(reg), reservations.ConcertReservationsProjection(reg),
		users.ByEmailProjection(reg),
		orders.UserOrdersProjection(reg), orders.DetailsProjection(reg),
		tickets.UserTicketsProjection(reg), tickets.TicketDetailsProjection(reg), tickets.ConcertTicketSummaryProjection(reg),
		tickets.DeliveryStatusProjection(reg), tickets.ValidationStatusProjection(reg),
	}, finance.Projections(reg)...) {
		c := pg.Consumer(postgres.FromPortable(p))
		for batch := range slices.Chunk(pgEvents, 20) {
			must(c.Handle(ctx, batch))
		}
	}
	cfg := pg.Pool().Config().ConnConfig.Copy()
	cfg.RuntimeParams["search_path"] = pg.Schema()
	pgDB := stdlib.OpenDB(*cfg)
	defer pgDB.Close()

	// Each read model's queries, on SQLite and on PostgreSQL.
	queries := map[string]func(db *sql.DB) (any, error){
		"concert details": func(db *sql.DB) (any, error) {
			w, err := app.ConcertDetails(ctx, db, "warsaw")
			if err != nil {
				return nil, err
			}
			k, err := app.ConcertDetails(ctx, db, "krakow")
			return []concerts.Details{w, k}, err
		},
		"available concerts": func(db *sql.DB) (any, error) { return concerts.AvailableConcerts(ctx, db, start) },
		"cart contents": func(db *sql.DB) (any, error) {
			ala, err := carts.Contents(ctx, db, "ala")
			if err != nil {
				return nil, err
			}
			ola, err := carts.Contents(ctx, db, "ola")
			return [][]carts.Line{ala, ola}, err
		},
		"cart summaries": func(db *sql.DB) (any, error) {
			ala, err := carts.SummaryOf(ctx, db, "ala")
			if err != nil {
				return nil, err
			}
			ola, err := carts.SummaryOf(ctx, db, "ola")
			return []carts.Summary{ala, ola}, err
		},
		"user reservations": func(db *sql.DB) (any, error) {
			ala, err := reservations.UserReservations(ctx, db, "ala")
			if err != nil {
				return nil, err
			}
			ola, err := reservations.UserReservations(ctx, db, "ola")
			return [][]reservations.UserReservation{ala, ola}, err
		},
		"concert reservations": func(db *sql.DB) (any, error) {
			w, err := reservations.ConcertReservationsOf(ctx, db, "warsaw")
			if err != nil {
				return nil, err
			}
			k, err := reservations.ConcertReservationsOf(ctx, db, "krakow")
			return []reservations.ConcertReservations{w, k}, err
		},
		"user orders": func(db *sql.DB) (any, error) { return orders.UserOrders(ctx, db, "ala") },
		"order details": func(db *sql.DB) (any, error) {
			w, err := orders.DetailsOf(ctx, db, placed["warsaw"])
			if err != nil {
				return nil, err
			}
			k, err := orders.DetailsOf(ctx, db, placed["krakow"])
			return []orders.Details{w, k}, err
		},
		"user tickets": func(db *sql.DB) (any, error) { return tickets.UserTickets(ctx, db, "ala") },
		"concert ticket summaries": func(db *sql.DB) (any, error) {
			w, err := tickets.ConcertTicketSummaryOf(ctx, db, "warsaw")
			if err != nil {
				return nil, err
			}
			k, err := tickets.ConcertTicketSummaryOf(ctx, db, "krakow")
			return []tickets.ConcertTicketSummary{w, k}, err
		},
		"user payments":     func(db *sql.DB) (any, error) { return finance.UserPayments(ctx, db, "ala") },
		"user invoices":     func(db *sql.DB) (any, error) { return finance.UserInvoices(ctx, db, "ala") },
		"organizer revenue": func(db *sql.DB) (any, error) { return finance.OrganizerRevenue(ctx, db, "organizer-1") },
		"users by e-mail": func(db *sql.DB) (any, error) {
			ala, err := users.ByEmail(ctx, db, "ala@example.com")
			if err != nil {
				return nil, err
			}
			ola, err := users.ByEmail(ctx, db, "ola@example.com")
			return []users.Account{ala, ola}, err
		},
	}
	for name, query := range queries {
		onSQLite, err := query(store.DB())
		if err != nil {
			t.Fatalf("%s on SQLite: %v", name, err)
		}
		onPostgres, err := query(pgDB)
		if err != nil {
			t.Fatalf("%s on PostgreSQL: %v", name, err)
		}
		if diff := cmp.Diff(onSQLite, onPostgres); diff != "" {
			t.Errorf("%s differs (-SQLite +PostgreSQL):\n%s", name, diff)
		}
		t.Logf("%s: %+v", name, onPostgres)
	}

	// The story reached every read model.
	d, err := app.ConcertDetails(ctx, pgDB, "krakow")
	if err != nil || !d.Cancelled || len(d.TicketTypes) != 1 || d.TicketTypes[0].Left != 45 {
		t.Errorf("krakow on PostgreSQL: %+v, %v; want cancelled, 45 seats left", d, err)
	}
	if s, err := carts.SummaryOf(ctx, pgDB, "ola"); err != nil || s.Items != 3 || s.Total.Amount != 81000 {
		t.Errorf("ola's cart on PostgreSQL: %+v, %v; want 3 items, 810.00 PLN", s, err)
	}
	if r, err := reservations.ConcertReservationsOf(ctx, pgDB, "warsaw"); err != nil || r.Confirmed["GA"] != 2 {
		t.Errorf("warsaw's reservations on PostgreSQL: %+v, %v; want 2 GA confirmed", r, err)
	}
	if d, err := orders.DetailsOf(ctx, pgDB, placed["krakow"]); err != nil || d.Status != orders.Cancelled || d.Refunded.Amount != 25000 {
		t.Errorf("ala's krakow order on PostgreSQL: %+v, %v; want cancelled and 250.00 PLN refunded", d, err)
	}
	if ts, err := tickets.UserTickets(ctx, pgDB, "ala"); err != nil || len(ts) != 3 {
		t.Errorf("ala's tickets on PostgreSQL: %+v, %v; want 3 (2 for warsaw, 1 voided for krakow)", ts, err)
	}
	if ps, err := finance.UserPayments(ctx, pgDB, "ala"); err != nil || len(ps) != 2 {
		t.Errorf("ala's payments on PostgreSQL: %+v, %v; want 2", ps, err)
	}
	if u, err := users.ByEmail(ctx, pgDB, "ola@example.com"); err != nil || u.Role != users.Organizer {
		t.Errorf("ola on PostgreSQL: %+v, %v", u, err)
	}
}
