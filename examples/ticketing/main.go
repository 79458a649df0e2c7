// Command ticketing runs the concert-ticketing example of es.
//
//	go run ./examples/ticketing demo [-db path]
//
// demo plays the story of this slice on a SQLite file (in a temporary
// directory unless -db says where): an organizer announces a concert in
// Warsaw, fans fill carts and check out, one reservation is confirmed and
// one expires after a short hold. It prints the events as they are stored
// and, at the end, the read models.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"esgo.dev/es"
	"esgo.dev/es/memory"
	"esgo.dev/es/sqlite"
	"esgo.dev/examples/ticketing/app"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/users"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "demo" {
		fmt.Fprintln(os.Stderr, "usage: ticketing demo [-db path]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	db := fs.String("db", "", "SQLite file (default: one in a new temporary directory)")
	hold := fs.Duration("hold", 2*time.Second, "how long a reservation holds its seats")
	_ = fs.Parse(os.Args[2:])
	if err := demo(context.Background(), *db, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func demo(ctx context.Context, path string, hold time.Duration) error {
	if path == "" {
		dir, err := os.MkdirTemp("", "ticketing-demo-")
		if err != nil {
			return err
		}
		path = filepath.Join(dir, "ticketing.db")
	}
	fmt.Println("store:", path)
	store, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		return err
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(app.Config{Events: store, ReadModels: store, Hold: hold, RelayPollInterval: 50 * time.Millisecond, Logger: logger})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- a.Run(runCtx) }()
	// A subscription of its own prints every event as it is stored. Its
	// checkpoint lives in memory: each demo run prints from the start.
	printer := es.NewSubscription("demo-printer", store, es.AtLeastOnce("demo-printer", memory.New(memory.Config{}), printEvent(a.Registry())), es.SubscriptionConfig{})
	go func() { done <- printer.Run(runCtx) }()
	defer func() { stop(); <-done; <-done }()

	step := func(s string) { time.Sleep(100 * time.Millisecond); fmt.Printf("\n== %s\n", s) }
	concertID := "warsaw-" + es.NewID()[:8]

	step("users register; the admin makes Olga an organizer")
	ids := map[string]string{}
	for _, u := range []struct {
		name string
		role users.Role
	}{{"admin", users.Admin}, {"olga", users.Customer}, {"ala", users.Customer}, {"ola", users.Customer}} {
		ids[u.name] = es.NewID()
		if err := a.RegisterUser(ctx, ids[u.name], u.name+"@example.com", u.name, "correct horse battery", u.role); err != nil {
			return err
		}
	}
	if err := a.RegisterUser(ctx, es.NewID(), "ALA@example.com", "Ala again", "correct horse battery", users.Customer); err != nil {
		fmt.Println("   a second account for ALA@example.com:", err)
	}
	admin, err := a.LogIn(ctx, "admin@example.com", "correct horse battery")
	if err != nil {
		return err
	}
	if _, err := a.Users.Handle(ctx, "", users.Stream(ids["olga"]), users.ChangeRole{UserID: ids["olga"], Role: users.Organizer,
		ActorID: admin.ID, ActorRole: admin.Role}); err != nil {
		return err
	}

	step("Olga announces a concert in Warsaw: concert and inventory in one append")
	pln := func(a int64) money.Money { return money.Money{Amount: a, Currency: "PLN"} }
	if err := a.CreateConcert(ctx, es.NewID(), concerts.CreateConcert{ConcertID: concertID, Name: "Summer Night", Artist: "Kwiat Jabłoni",
		StartsAt: time.Now().UTC().AddDate(0, 2, 0).Truncate(time.Hour), Venue: "Torwar, Warsaw", OrganizerID: ids["olga"],
		TicketTypes: []concerts.TicketType{{Name: "VIP", Price: pln(39900)}, {Name: "Standing", Price: pln(14950)}},
		Capacity:    map[string]int{"VIP": 4, "Standing": 100}}); err != nil {
		return err
	}

	step("fans fill their carts (prices are snapshotted from the concert)")
	for _, add := range []struct {
		who, tt string
		n       int
	}{{"ala", "VIP", 2}, {"ala", "Standing", 1}, {"ala", "Standing", 1}, {"ola", "VIP", 2}} {
		if err := a.AddToCart(ctx, es.NewID(), ids[add.who], concertID, add.tt, add.n); err != nil {
			return err
		}
	}
	if err := a.AddToCart(ctx, es.NewID(), ids["ola"], concertID, "VIP", 11); err != nil {
		fmt.Println("   Ola tries 11 more VIP tickets:", err)
	}

	step("both check out: each reservation holds seats for " + hold.String())
	alaRes, err := a.Checkout(ctx, es.NewID(), ids["ala"])
	if err != nil {
		return err
	}
	if _, err := a.Checkout(ctx, es.NewID(), ids["ola"]); err != nil {
		return err
	}
	if err := a.AddToCart(ctx, es.NewID(), ids["admin"], concertID, "VIP", 1); err != nil {
		return err
	}
	if _, err := a.Checkout(ctx, es.NewID(), ids["admin"]); err != nil {
		fmt.Println("   the admin wants one more VIP seat:", err)
	}

	step("Ala's reservation is confirmed (the orders module will do this once paid); Ola's is left to expire")
	if err := a.ConfirmReservation(ctx, es.NewID(), concertID, alaRes[concertID]); err != nil {
		return err
	}
	time.Sleep(hold + 500*time.Millisecond)
	step("read models")
	if err := a.WaitForReadModels(ctx); err != nil {
		return err
	}
	return printReadModels(ctx, store, concertID, ids)
}

func printEvent(reg *es.Registry) es.EventHandlerFunc {
	return func(_ context.Context, e es.Event) error {
		summary := string(e.Data)
		if v, err := reg.Decode(e); err == nil {
			summary = describe(v)
		}
		fmt.Printf("   %-34s %-44s v%-3d %s\n", e.Type, shorten(e.StreamID), e.Version, summary)
		return nil
	}
}

func shorten(stream string) string {
	if len(stream) > 44 {
		return stream[:41] + "..."
	}
	return stream
}

func describe(v any) string {
	switch e := v.(type) {
	case users.UserRegistered:
		return fmt.Sprintf("%s <%s> as %s (password stored as a bcrypt hash)", e.Name, e.Email, e.Role)
	case users.EmailClaimed:
		return e.Email
	case users.RoleChanged:
		return "now " + string(e.Role)
	case concerts.ConcertCreated:
		var tts []string
		for _, t := range e.TicketTypes {
			tts = append(tts, t.Name+" "+t.Price.String())
		}
		return fmt.Sprintf("%s by %s at %s: %s", e.Name, e.Artist, e.Venue, strings.Join(tts, ", "))
	case reservations.InventoryOpened:
		return fmt.Sprintf("capacity %v", e.Capacity)
	case carts.CartOpened:
		return fmt.Sprintf("cart #%d", e.CartNo)
	case carts.ItemAdded:
		return fmt.Sprintf("%d × %s for %s at %s", e.Quantity, e.TicketType, e.ConcertName, e.UnitPrice)
	case carts.QuantityChanged:
		return fmt.Sprintf("%s now %d", e.TicketType, e.Quantity)
	case carts.CartConfirmed:
		return fmt.Sprintf("%d lines, total %s", len(e.Lines), e.Total)
	case reservations.SeatsReserved:
		return fmt.Sprintf("%v until %s", e.Seats, e.ExpiresAt.Format("15:04:05.000"))
	case reservations.ReservationConfirmed:
		return "reservation " + e.ReservationID[:8]
	case reservations.ReservationExpired:
		return fmt.Sprintf("released %v", e.Seats)
	case reservations.ExpiryScheduled:
		return "deadline at " + e.At.Format("15:04:05.000")
	case reservations.ExpiryCancelled:
		return "deadline cancelled"
	case reservations.ExpiryRequested:
		return "deadline fired: ExpireReservation sent"
	}
	return fmt.Sprintf("%+v", v)
}

func printReadModels(ctx context.Context, store *sqlite.Store, concertID string, ids map[string]string) error {
	db := store.DB()
	avail, err := concerts.AvailableConcerts(ctx, db, time.Now())
	if err != nil {
		return err
	}
	fmt.Println("available concerts:")
	for _, c := range avail {
		fmt.Printf("   %s, %s, %s, %s\n", c.Name, c.Artist, c.Venue, c.StartsAt.Format("2006-01-02 15:04"))
	}
	d, err := concerts.DetailsOf(ctx, db, concertID)
	if err != nil {
		return err
	}
	fmt.Printf("concert details: %s\n", d.Name)
	for _, t := range d.TicketTypes {
		fmt.Printf("   %-9s %12s  %d of %d left\n", t.Name, t.Price, t.Left, t.Capacity)
	}
	cr, err := reservations.ConcertReservationsOf(ctx, db, concertID)
	if err != nil {
		return err
	}
	fmt.Printf("concert reservations: held %v, confirmed %v, %d active\n", cr.Held, cr.Confirmed, len(cr.Active))
	for _, who := range slices.Sorted(maps.Keys(ids)) {
		acct, err := users.ByEmail(ctx, db, who+"@example.com")
		if err != nil {
			return err
		}
		sum, err := carts.SummaryOf(ctx, db, ids[who])
		if err != nil {
			return err
		}
		lines, err := carts.Contents(ctx, db, ids[who])
		if err != nil {
			return err
		}
		res, err := reservations.UserReservations(ctx, db, ids[who])
		if err != nil {
			return err
		}
		fmt.Printf("%s <%s> (%s): open cart %d lines, %d tickets, %s\n", acct.Name, acct.Email, acct.Role, len(lines), sum.Items, sum.Total)
		for _, r := range res {
			fmt.Printf("   reservation %s: %v %s\n", r.ReservationID[:8], r.Seats, r.Status)
		}
	}
	return nil
}
