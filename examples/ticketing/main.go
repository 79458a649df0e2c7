// Command ticketing runs the concert-ticketing example of es.
//
//	go run ./examples/ticketing [serve] [-addr localhost:8080] [-db ticketing.db | -postgres DSN]
//	    [-modules concerts,carts,... -nats URL]
//	go run ./examples/ticketing demo [-db path]
//
// serve, the default, runs the web application (package web): the JSON
// API, the pages and the event explorer, on a SQLite file or on
// PostgreSQL, with demo accounts and concerts on first start. Ctrl-C
// finishes the requests in flight, then stops the subscriptions and the
// relay; a restart carries on where it stopped.
//
// The modules can run as services, in processes that share PostgreSQL
// and exchange messages through NATS JetStream (see package app):
//
//	ticketing serve -postgres "$DSN" -nats nats://127.0.0.1:4222 -modules concerts,carts,users
//	ticketing serve -postgres "$DSN" -nats nats://127.0.0.1:4222 -modules orders,reservations -addr ""
//	ticketing serve -postgres "$DSN" -nats nats://127.0.0.1:4222 -modules finance,tickets -addr ""
//
// -modules names the modules whose message handlers a process runs
// (default all); -addr "" serves no HTTP, for a process that only runs
// its modules. The web process keeps every read model it shows.
//
// demo plays the story on a SQLite file (in a temporary directory unless
// -db says where), with every module running: an organizer announces a
// concert in Warsaw; fans fill carts, choose how their tickets are
// delivered and check out; each checkout places an order that the order
// process takes through seats, a payment by the finance module (its fake
// gateway) and tickets by the tickets module, mailed as .eml files into a
// folder beside the database, or handed to the fake courier. One purchase
// completes with its tickets sent by courier; one card is declined and its
// seats are released; one order finds the seats sold out, is rejected, and
// its lines come back into the cart, to be changed and checked out again,
// its tickets e-mailed; one bank never answers and the order is cancelled
// when the hold runs out. It prints the events as they are stored, the
// messages as they are delivered, and, at the end, the read models and
// the e-mails written.
package main

import (
	"context"
	"errors"
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
	"esgo.dev/examples/ticketing/finance"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/reservations"
	"esgo.dev/examples/ticketing/tickets"
	"esgo.dev/examples/ticketing/tickets/mailer"
	"esgo.dev/examples/ticketing/users"
)

// commands returns the subcommands, each in its own file.
func commands() map[string]func(ctx context.Context, args []string) error {
	return map[string]func(ctx context.Context, args []string) error{
		"demo":     demoCommand,
		"loadtest": loadtestCommand,
		"serve":    serveCommand,
	}
}

func main() {
	cmds := commands()
	args := os.Args[1:]
	if len(args) == 0 || len(args[0]) > 0 && args[0][0] == '-' {
		args = append([]string{"serve"}, args...) // the web application is the default
	}
	if cmds[args[0]] == nil {
		fmt.Fprintln(os.Stderr, "usage: ticketing [command] [flags]; commands:", strings.Join(slices.Sorted(maps.Keys(cmds)), ", "),
			"(default serve); ticketing <command> -h lists its flags")
		os.Exit(2)
	}
	if err := cmds[args[0]](context.Background(), args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(1)
	}
}

func demoCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	db := fs.String("db", "", "SQLite file (default: one in a new temporary directory)")
	hold := fs.Duration("hold", 2*time.Second, "how long a reservation holds its seats (the order then waits a quarter more for its payment)")
	_ = fs.Parse(args)
	return demo(ctx, *db, *hold)
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
	mailDir := filepath.Join(filepath.Dir(path), "mail")
	fmt.Println("ticket e-mails:", mailDir)
	folder, err := mailer.NewFolder(mailDir, "tickets@ticketing.example")
	if err != nil {
		return err
	}
	store, err := sqlite.Open(ctx, path, sqlite.Config{})
	if err != nil {
		return err
	}
	defer store.Close()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ids := map[string]string{}
	for _, name := range []string{"admin", "olga", "ala", "ela", "ula"} {
		ids[name] = es.NewID()
	}
	// Addresses are per run, so that a second run on the same file
	// registers its own users rather than meeting the first run's.
	domain := "@run-" + es.NewID()[28:] + ".example.com"
	fmt.Println("payments: the finance module's fake gateway. Ela's card is declined; Ula's bank never answers.")
	gateway := finance.NewFakeGateway()
	gateway.DeclineUser(ids["ela"], "card_declined")
	gateway.PendUser(ids["ula"])
	reg, err := app.NewRegistry()
	if err != nil {
		return err
	}
	a, err := app.New(app.Config{Events: store, ReadModels: app.SQLiteReadModels(store), Hold: hold, PaymentGrace: hold / 4, RelayPollInterval: 20 * time.Millisecond,
		Payments: gateway, Mailer: folder, RelayObserver: messagePrinter{reg}, Logger: logger})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- a.Run(runCtx) }()
	// A subscription of its own prints every event as it is stored. Its
	// checkpoint lives in memory: each demo run prints from the start.
	printer := es.NewSubscription("demo-printer", store, es.AtLeastOnce("demo-printer", memory.New(memory.Config{}), printEvent(reg)), es.SubscriptionConfig{})
	go func() { done <- printer.Run(runCtx) }()
	defer func() { stop(); <-done; <-done }()

	step := func(s string) { time.Sleep(150 * time.Millisecond); fmt.Printf("\n== %s\n", s) }
	concertID := "warsaw-" + es.NewID()[28:]

	step("users register; the admin makes Olga an organizer")
	for _, u := range []struct {
		name string
		role users.Role
	}{{"admin", users.Admin}, {"olga", users.Customer}, {"ala", users.Customer}, {"ela", users.Customer}, {"ula", users.Customer}} {
		if err := a.RegisterUser(ctx, ids[u.name], u.name+domain, u.name, "correct horse battery", u.role); err != nil {
			return err
		}
	}
	if err := a.RegisterUser(ctx, es.NewID(), "ALA"+strings.ToUpper(domain), "Ala again", "correct horse battery", users.Customer); err != nil {
		fmt.Println("   a second account for ALA"+strings.ToUpper(domain)+":", err)
	}
	admin, err := a.LogIn(ctx, "admin"+domain, "correct horse battery")
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

	step("fans fill their carts (prices are snapshotted from the concert) and choose how their tickets come")
	for _, add := range []struct {
		who, tt string
		n       int
	}{{"ala", "VIP", 2}, {"ala", "Standing", 1}, {"ala", "Standing", 1}, {"ela", "VIP", 2}, {"ula", "Standing", 3}} {
		if err := a.AddToCart(ctx, es.NewID(), ids[add.who], concertID, add.tt, add.n); err != nil {
			return err
		}
	}
	if err := a.AddToCart(ctx, es.NewID(), ids["ela"], concertID, "VIP", 11); err != nil {
		fmt.Println("   Ela tries 11 more VIP tickets:", err)
	}
	if _, err := a.Checkout(ctx, es.NewID(), ids["ala"]); err != nil {
		fmt.Println("   Ala checks out before choosing a delivery:", err)
	}
	if err := a.ChooseDelivery(ctx, es.NewID(), ids["ala"], carts.Delivery{Method: carts.ByCourier, Address: &carts.PostalAddress{
		Name: "Ala Nowak", Street: "ul. Marszałkowska 1", City: "Warszawa", PostalCode: "00-001", Country: "PL"}}); err != nil {
		return err
	}
	for _, who := range []string{"ela", "ula"} {
		if err := a.ChooseDelivery(ctx, es.NewID(), ids[who], carts.Delivery{Method: carts.ByEmail, Email: who + domain}); err != nil {
			return err
		}
	}

	step("Ala checks out: seats held, payment captured, seats confirmed, tickets issued and handed to the courier")
	if err := checkout(ctx, a, ids, "ala", concertID, orders.Completed); err != nil {
		return err
	}
	step("Ela checks out: her card is declined, so her order is cancelled and its seats released")
	if err := checkout(ctx, a, ids, "ela", concertID, orders.Cancelled); err != nil {
		return err
	}
	step("the admin wants 3 VIP seats, but 2 are left: the order is rejected, nothing is charged, the cart comes back")
	if err := a.AddToCart(ctx, es.NewID(), ids["admin"], concertID, "VIP", 3); err != nil {
		return err
	}
	if err := a.ChooseDelivery(ctx, es.NewID(), ids["admin"], carts.Delivery{Method: carts.ByEmail, Email: "admin" + domain}); err != nil {
		return err
	}
	if err := checkout(ctx, a, ids, "admin", concertID, orders.Rejected); err != nil {
		return err
	}
	if err := waitUntil(ctx, func() (bool, error) {
		c, _, err := a.Carts.Load(ctx, carts.Stream(ids["admin"]))
		return c.Open && len(c.Lines) > 0, err
	}); err != nil {
		return err
	}
	step("the admin takes 2 instead and checks out again: this time the tickets are e-mailed")
	if _, err := a.Carts.Handle(ctx, es.NewID(), carts.Stream(ids["admin"]), carts.ChangeQuantity{UserID: ids["admin"],
		ConcertID: concertID, TicketType: "VIP", Quantity: 2}); err != nil {
		return err
	}
	if err := checkout(ctx, a, ids, "admin", concertID, orders.Completed); err != nil {
		return err
	}
	step("Ula checks out, but her bank never answers: when the hold runs out the seats are released and the order cancelled")
	if err := checkout(ctx, a, ids, "ula", concertID, orders.Cancelled); err != nil {
		return err
	}
	step("read models")
	if err := a.WaitForReadModels(ctx); err != nil {
		return err
	}
	if err := printReadModels(ctx, store, concertID, domain, ids); err != nil {
		return err
	}
	mails, err := filepath.Glob(filepath.Join(mailDir, "*.eml"))
	if err != nil {
		return err
	}
	fmt.Printf("ticket e-mails in %s:\n", mailDir)
	for _, m := range mails {
		fmt.Println("  ", filepath.Base(m))
	}
	return nil
}

// shownMessages are the messages the demo prints as they are delivered:
// the modules' public messages; their own (a ticket's sending, an
// invoice's issue) show as the events they cause.
var shownMessages = []string{"orders.PlaceOrder", "orders.ReserveSeats", "orders.SeatsHeld", "orders.SeatsUnavailable",
	"orders.ConfirmSeats", "orders.SeatsConfirmed", "orders.ReleaseSeats", "orders.PaymentDue", "finance.RequestPayment",
	"finance.PaymentSucceeded", "finance.PaymentFailed", "finance.RefundPayment", "finance.PaymentRefunded",
	"tickets.IssueTickets", "tickets.TicketsIssued", "tickets.VoidTickets", "tickets.DeliveryFailed", "carts.RestoreItems"}

// checkout checks out who's cart and waits for the order of the concert
// to reach want.
func checkout(ctx context.Context, a *app.App, ids map[string]string, who, concertID string, want orders.Status) error {
	placed, err := a.Checkout(ctx, es.NewID(), ids[who])
	if err != nil {
		return err
	}
	var o orders.Order
	if err := waitUntil(ctx, func() (bool, error) {
		o, err = a.Order(ctx, placed[concertID])
		if errors.Is(err, orders.ErrNoOrder) {
			return false, nil
		}
		return o.Status == want, err
	}); err != nil {
		return fmt.Errorf("%s's order: %w (it is %s)", who, err, o.Status)
	}
	fmt.Printf("   %s's order %s: %s %s\n", who, o.ID[:8], o.Status, o.Reason)
	return nil
}

func waitUntil(ctx context.Context, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// messagePrinter prints the shown messages as the relay delivers them.
type messagePrinter struct{ reg *es.Registry }

func (p messagePrinter) ObserveDelivery(m es.Message, _ time.Duration, err error) {
	if !slices.Contains(shownMessages, m.Type) {
		return
	}
	summary := string(m.Data)
	if v, err := es.DecodeMessage(p.reg, m); err == nil {
		summary = describe(v)
	}
	if err != nil {
		summary += " (failed, retried: " + err.Error() + ")"
	}
	fmt.Printf("   ✉ %-32s %s\n", m.Type, summary)
}

func (messagePrinter) ObserveBacklog(int64) {}

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
	case reservations.SeatsTaken:
		return fmt.Sprintf("%v taken by reservation %s", e.Seats, e.ReservationID[:8])
	case reservations.SeatsFreed:
		return fmt.Sprintf("%v free again (reservation %s)", e.Seats, e.ReservationID[:8])
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
	case reservations.ReservationCancelled:
		return fmt.Sprintf("released %v", e.Seats)
	case carts.DeliveryChosen:
		if e.Delivery.Address != nil {
			return fmt.Sprintf("by courier to %s, %s", e.Delivery.Address.Street, e.Delivery.Address.City)
		}
		return "by e-mail to " + e.Delivery.Email
	case carts.ItemsRestored:
		return fmt.Sprintf("%d lines of rejected order %s are back in cart #%d", len(e.Lines), e.OrderID[:8], e.CartNo)
	case orders.OrderPlaced:
		return fmt.Sprintf("%d lines, %s, delivery by %s", len(e.Lines), e.Total, e.Delivery.Method)
	case orders.OrderSeatsHeld:
		return "seats held until " + e.ExpiresAt.Format("15:04:05.000")
	case orders.OrderRejected:
		return "rejected: " + e.Reason
	case orders.PaymentCaptured:
		return "paid " + e.Amount.String()
	case orders.OrderSeatsConfirmed:
		return "seats confirmed"
	case orders.OrderCompleted:
		return fmt.Sprintf("completed: %d tickets", len(e.TicketIDs))
	case orders.OrderCancelled:
		out := "cancelled: " + e.Reason
		if e.Release != "" {
			out += "; releasing the seats"
		}
		if e.Refund != nil {
			out += "; refunding " + e.Refund.Amount.String()
		}
		return out
	case orders.SaleRecorded:
		return "order " + e.OrderID[:8]
	case orders.PlaceOrder:
		return fmt.Sprintf("order %s: %d lines", e.OrderID[:8], len(e.Lines))
	case orders.ReserveSeats:
		return fmt.Sprintf("order %s: %v", e.OrderID[:8], e.Seats)
	case orders.SeatsHeld:
		return fmt.Sprintf("order %s until %s", e.OrderID[:8], e.ExpiresAt.Format("15:04:05.000"))
	case orders.SeatsUnavailable:
		return fmt.Sprintf("order %s: %s", e.OrderID[:8], e.Reason)
	case orders.ConfirmSeats:
		return "order " + e.OrderID[:8]
	case orders.SeatsConfirmed:
		return "order " + e.OrderID[:8]
	case orders.ReleaseSeats:
		return "order " + e.OrderID[:8]
	case orders.PaymentDue:
		return "deadline fired for order " + e.OrderID[:8]
	case finance.RequestPayment:
		return fmt.Sprintf("order %s: %s to organizer %s", e.OrderID[:8], e.Amount, e.OrganizerID[:8])
	case finance.PaymentSucceeded:
		return fmt.Sprintf("order %s: %s", e.OrderID[:8], e.Amount)
	case finance.PaymentFailed:
		return fmt.Sprintf("order %s: %s", e.OrderID[:8], e.Reason)
	case tickets.IssueTickets:
		return fmt.Sprintf("order %s: %v by %s", e.OrderID[:8], e.Seats, e.Delivery.Method)
	case tickets.TicketsIssued:
		return fmt.Sprintf("order %s: %d tickets", e.OrderID[:8], len(e.TicketIDs))
	case carts.RestoreItems:
		return fmt.Sprintf("order %s: %d lines back to the cart", e.OrderID[:8], len(e.Lines))
	case finance.RefundPayment:
		return fmt.Sprintf("order %s: %s, %s", e.OrderID[:8], e.Amount, e.Reason)
	case finance.PaymentRefunded:
		return fmt.Sprintf("order %s: %s", e.OrderID[:8], e.Amount)
	case tickets.VoidTickets:
		return fmt.Sprintf("order %s: %s", e.OrderID[:8], e.Reason)
	case tickets.DeliveryFailed:
		return fmt.Sprintf("order %s, ticket %s: %s", e.OrderID[:8], e.TicketID[:8], e.Reason)
	case finance.PaymentRequested:
		return fmt.Sprintf("%s for order %s, organizer %s", e.Amount, e.OrderID[:8], e.OrganizerID[:8])
	case finance.PaymentCaptured:
		return fmt.Sprintf("the gateway captured %s (%s)", e.Amount, e.GatewayID[:16])
	case finance.PaymentDeclined:
		return fmt.Sprintf("declined (%s): %s", e.Code, e.Reason)
	case finance.RefundCompleted:
		return "refunded " + e.Amount.String()
	case finance.InvoiceIssued:
		return fmt.Sprintf("invoice %s, total %s", e.Number, e.Total)
	case finance.InvoiceNumbered:
		return fmt.Sprintf("number %d taken", e.Seq)
	case tickets.OrderTicketsIssued:
		return fmt.Sprintf("%d tickets", len(e.TicketIDs))
	case tickets.TicketIssued:
		return fmt.Sprintf("%s seat %d, with a secret code", e.TicketType, e.Seat)
	case tickets.DeliveryRequested:
		if e.Delivery.Address != nil {
			return fmt.Sprintf("by courier to %s, %s", e.Delivery.Address.Street, e.Delivery.Address.City)
		}
		return "by e-mail to " + e.Delivery.Email
	case tickets.TicketEmailed:
		return "e-mailed to " + e.Email + " (" + filepath.Base(e.Reference) + ")"
	case tickets.ParcelShipped:
		return "handed to the courier, tracking " + e.Tracking
	}
	return fmt.Sprintf("%+v", v)
}

func printReadModels(ctx context.Context, store *sqlite.Store, concertID, domain string, ids map[string]string) error {
	db := store.DB()
	avail, err := concerts.AvailableConcerts(ctx, db, time.Now())
	if err != nil {
		return err
	}
	fmt.Println("available concerts:")
	for _, c := range avail {
		fmt.Printf("   %s, %s, %s, %s\n", c.Name, c.Artist, c.Venue, c.StartsAt.Format("2006-01-02 15:04"))
	}
	d, err := app.ConcertDetails(ctx, db, concertID)
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
		acct, err := users.ByEmail(ctx, db, who+domain)
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
		pays, err := finance.UserPayments(ctx, db, ids[who])
		if err != nil {
			return err
		}
		for _, p := range pays {
			fmt.Printf("   payment %s: %s %s (refunded %s)\n", p.PaymentID[:8], p.Amount, p.Status, p.Refunded)
		}
		ts, err := tickets.UserTickets(ctx, db, ids[who])
		if err != nil {
			return err
		}
		for _, t := range ts {
			fmt.Printf("   ticket %s: %s seat %d, %s, delivery %s\n", t.TicketID[:8], t.TicketType, t.Seat, t.Status, t.Delivery)
		}
		uo, err := orders.UserOrders(ctx, db, ids[who])
		if err != nil {
			return err
		}
		for _, o := range uo {
			d, err := orders.DetailsOf(ctx, db, o.OrderID)
			if err != nil {
				return err
			}
			fmt.Printf("   order %s: %d tickets, %s, %s %s (delivery by %s, %d tickets issued)\n",
				o.OrderID[:8], o.Tickets, o.Total, o.Status, o.Reason, d.Delivery.Method, len(d.TicketIDs))
		}
	}
	return nil
}
