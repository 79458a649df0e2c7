package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/users"
)

func TestTheConcertsPageListsTheConcertsOnSaleWithTheSeatsLeft(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")

	p := e.anonymous().page("/")
	if p.Status != http.StatusOK {
		t.Fatalf("status %d, want 200", p.Status)
	}
	links := p.all(withAttr("data-concert-id", id))
	if len(links) != 1 || textOf(links[0]) != "Nocturnes" || attr(links[0], "href") != "/concerts/"+id {
		t.Fatalf("want one link to /concerts/%s named Nocturnes in %s", id, p.Body)
	}
	if left := p.all(withAttr("class", "seats-left")); len(left) != 1 || textOf(left[0]) != "110 seats left" {
		t.Errorf("seats left: want 110 in %s", p.Body)
	}
	if strings.Contains(p.Body, "nav-cart") || p.byID("nav-login") == nil {
		t.Errorf("an anonymous nav has a log-in link and no cart")
	}
}

func TestAConcertPageShowsItsTicketTypesAndCustomersCanAddThemToTheCart(t *testing.T) {
	e := newEnv(t)
	org := e.newUser("org", users.Organizer)
	id := e.concert(org, "Nocturnes")
	fan := e.newUser("fan", users.Customer)

	p := fan.page("/concerts/" + id)
	if p.Status != http.StatusOK || p.text("main") == "" {
		t.Fatalf("status %d, want 200", p.Status)
	}
	if h1 := textOf(p.all(func(n *html.Node) bool { return n.Data == "h1" })[0]); h1 != "Nocturnes" {
		t.Errorf("h1 %q, want the concert's name", h1)
	}
	row := p.all(withAttr("data-ticket-type", "Early bird"))
	if len(row) == 0 || textOf(row[0]) != "Early bird 120.00 PLN 100" {
		t.Errorf("want the Early bird row with its price and seats left in %s", p.Body)
	}
	form := p.byID("add-to-cart-early-bird")
	if form == nil || attr(form, "data-concert-id") != id || attr(form, "data-ticket-type") != "Early bird" || p.byID("quantity-early-bird") == nil {
		t.Fatalf("want #add-to-cart-early-bird for the concert in %s", p.Body)
	}
	if p.byID("add-to-cart-vip") == nil {
		t.Errorf("want #add-to-cart-vip")
	}

	anon := e.anonymous().page("/concerts/" + id)
	if anon.byID("add-to-cart-vip") != nil || anon.byID("login-to-buy") == nil {
		t.Errorf("an anonymous viewer gets a log-in link, not a form")
	}
	if org.page("/concerts/"+id).byID("add-to-cart-vip") != nil {
		t.Errorf("an organizer gets no add-to-cart form")
	}
}

func TestAnUnknownConcertIsANotFoundPage(t *testing.T) {
	e := newEnv(t)
	p := e.anonymous().page("/concerts/no-such-concert")
	if p.Status != http.StatusNotFound || p.text("error-message") == "" {
		t.Errorf("status %d, want a 404 page", p.Status)
	}
}

func TestAnAnonymousViewerIsSentToLogInAndBack(t *testing.T) {
	e := newEnv(t)
	anon := e.anonymous()
	for _, path := range []string{"/cart", "/orders", "/orders/x", "/tickets", "/tickets/x", "/organizer",
		"/organizer/concerts/new", "/admin/users?sort=name"} {
		p := anon.page(path)
		if want := "/login?next=" + url.QueryEscape(path); p.Status != http.StatusSeeOther || p.Header.Get("Location") != want {
			t.Errorf("%s: %d to %q, want 303 to %q", path, p.Status, p.Header.Get("Location"), want)
		}
	}
}

func TestAPageForAnotherRoleIsForbidden(t *testing.T) {
	e := newEnv(t)
	fan, org := e.newUser("fan", users.Customer), e.newUser("org", users.Organizer)
	for _, c := range []struct {
		u    *user
		path string
	}{{fan, "/organizer"}, {fan, "/organizer/concerts/new"}, {fan, "/admin/users"}, {org, "/cart"}, {org, "/admin/users"}} {
		if p := c.u.page(c.path); p.Status != http.StatusForbidden || p.text("error-message") == "" {
			t.Errorf("%s: %d, want a 403 page", c.path, p.Status)
		}
	}
}

func TestTheLogInAndRegisterPagesGoBackOnlyToThisSite(t *testing.T) {
	e := newEnv(t)
	anon := e.anonymous()
	for next, want := range map[string]string{"/cart": "/cart", "https://evil.example/": "/", "//evil.example/": "/", "": "/",
		`/\evil.example`: "/"} {
		p := anon.page("/login?next=" + url.QueryEscape(next))
		form := p.byID("login-form")
		if p.Status != http.StatusOK || form == nil || attr(form, "data-next") != want {
			t.Errorf("next %q: want #login-form going to %q in %s", next, want, p.Body)
		}
		for _, id := range []string{"email", "password"} {
			if p.byID(id) == nil {
				t.Errorf("no #%s on the log-in page", id)
			}
		}
	}
	p := anon.page("/register?next=%2Fcart")
	if form := p.byID("register-form"); form == nil || attr(form, "data-next") != "/cart" || p.byID("name") == nil {
		t.Errorf("want #register-form going to /cart with #email, #name, #password in %s", p.Body)
	}
}

func TestTheCartPageShowsItsLinesTotalAndDeliveryChoice(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")
	fan := e.newUser("fan", users.Customer)
	if p := fan.page("/cart"); p.byID("cart-empty") == nil || p.byID("checkout") != nil {
		t.Errorf("an empty cart says so and has no checkout in %s", p.Body)
	}
	ctx := t.Context()
	if err := e.App.AddToCart(ctx, "add-1", fan.ID, id, "VIP", 2); err != nil {
		t.Fatal(err)
	}
	if err := e.App.AddToCart(ctx, "add-2", fan.ID, id, "Early bird", 1); err != nil {
		t.Fatal(err)
	}
	e.readModelsCaughtUp()

	p := fan.page("/cart")
	rows := p.all(func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-concert-id") == id })
	if len(rows) != 2 {
		t.Fatalf("%d lines, want 2 in %s", len(rows), p.Body)
	}
	// Lines come in the order they were added.
	if got := textOf(rows[0]); !strings.HasPrefix(got, "Nocturnes VIP 300.00 PLN") || !strings.Contains(got, "600.00 PLN") {
		t.Errorf("VIP line %q, want its price and subtotal", got)
	}
	if got := p.text("cart-total"); got != "720.00 PLN" {
		t.Errorf("total %q, want 720.00 PLN", got)
	}
	if p.byID("delivery-form") == nil || attr(p.byID("delivery-address"), "value") != fan.Email || p.byID("checkout") == nil {
		t.Errorf("want #delivery-form with the fan's address and #checkout in %s", p.Body)
	}
}

func TestTheOrderPageShowsTheOrdersStatusAndTickets(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")
	fan := e.newUser("fan", users.Customer)
	order := e.buy(fan, id, 2)

	p := fan.page("/orders/" + order.OrderID)
	if p.Status != http.StatusOK || p.text("order-status") != "completed" || attr(p.byID("order"), "data-final") != "true" {
		t.Fatalf("want a completed, final order in %s", p.Body)
	}
	if p.byID("cancel-order") != nil {
		t.Errorf("a final order offers no cancel")
	}
	if got := p.text("order-total"); got != "600.00 PLN" {
		t.Errorf("total %q, want 600.00 PLN", got)
	}
	if links := p.all(func(n *html.Node) bool { return strings.HasPrefix(attr(n, "href"), "/tickets/") }); len(links) != 2 {
		t.Errorf("%d ticket links, want 2", len(links))
	}

	list := fan.page("/orders")
	if rows := list.all(withAttr("data-order-id", order.OrderID)); len(rows) != 1 || !strings.Contains(textOf(rows[0]), "completed") {
		t.Errorf("want the order, completed, in /orders: %s", list.Body)
	}

	tp := fan.page("/tickets")
	items := tp.all(func(n *html.Node) bool { return n.Data == "li" && attr(n, "data-ticket-id") != "" })
	if len(items) != 2 {
		t.Fatalf("%d tickets, want 2 in %s", len(items), tp.Body)
	}
	for _, it := range items {
		if attr(it, "id") != "ticket-"+attr(it, "data-ticket-id") || !strings.Contains(textOf(it), "Nocturnes: VIP") {
			t.Errorf("ticket %q", textOf(it))
		}
	}
	if imgs := tp.all(func(n *html.Node) bool {
		return n.Data == "img" && strings.HasPrefix(attr(n, "src"), "data:image/png;base64,")
	}); len(imgs) != 2 {
		t.Errorf("%d QR codes, want 2", len(imgs))
	}

	ticket := fan.page("/tickets/" + order.TicketIDs[0])
	if ticket.Status != http.StatusOK || ticket.text("ticket-type") != "VIP" || !strings.HasPrefix(ticket.text("ticket-code"), order.TicketIDs[0]+".") {
		t.Errorf("want the VIP ticket with its code in %s", ticket.Body)
	}
}

func TestAnotherUsersOrderAndTicketAreNotFound(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")
	order := e.buy(e.newUser("fan", users.Customer), id, 1)
	other := e.newUser("other", users.Customer)
	for _, path := range []string{"/orders/" + order.OrderID, "/tickets/" + order.TicketIDs[0], "/orders/nope", "/tickets/nope"} {
		if p := other.page(path); p.Status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, p.Status)
		}
	}
}

func TestTheOrganizerDashboardShowsSalesAndRevenueOfOwnConcerts(t *testing.T) {
	e := newEnv(t)
	org, rival := e.newUser("org", users.Organizer), e.newUser("rival", users.Organizer)
	id := e.concert(org, "Nocturnes")
	rivals := e.concert(rival, "Mazurkas")
	e.buy(e.newUser("fan", users.Customer), id, 2)

	p := org.page("/organizer")
	if p.Status != http.StatusOK || p.byID("new-concert") == nil {
		t.Fatalf("status %d; want the dashboard with #new-concert", p.Status)
	}
	sections := p.all(withAttr("data-concert-id", id))
	if len(sections) == 0 || len(p.all(withAttr("data-concert-id", rivals))) != 0 {
		t.Fatalf("want Nocturnes and not the rival's concert in %s", p.Body)
	}
	section := &htmlPage{t: t, Doc: sections[0]}
	vip := section.all(func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-ticket-type") == "VIP" })
	if len(vip) != 1 || textOf(vip[0]) != "VIP 300.00 PLN 10 2 0 8" {
		t.Errorf("VIP sales %q, want 10 seats, 2 sold, 8 left", textOf(vip[0]))
	}
	if net := section.all(withAttr("class", "net")); len(net) != 1 || textOf(net[0]) != "600.00 PLN" {
		t.Errorf("want a net revenue of 600.00 PLN in %s", p.Body)
	}

	form := org.page("/organizer/concerts/new")
	for _, fid := range []string{"concert-form", "concert-name", "concert-artist", "concert-venue", "concert-starts-at", "type-name-1", "type-price-1", "type-capacity-1"} {
		if form.byID(fid) == nil {
			t.Errorf("no #%s on the new concert page", fid)
		}
	}
}

func TestTheAdminUsersPageListsAccountsWithTheirRoles(t *testing.T) {
	e := newEnv(t)
	admin := e.newUser("admin", users.Admin)
	org := e.newUser("org", users.Organizer)
	e.readModelsCaughtUp()

	p := admin.page("/admin/users")
	if p.Status != http.StatusOK {
		t.Fatalf("status %d", p.Status)
	}
	row := p.all(withAttr("data-user-id", org.ID))
	if len(row) == 0 || !strings.Contains(textOf(row[0]), org.Email) {
		t.Fatalf("want the organizer's row in %s", p.Body)
	}
	sel := p.byID("role-" + org.ID)
	selected := (&htmlPage{t: t, Doc: sel}).all(func(n *html.Node) bool { return n.Data == "option" && hasAttr(n, "selected") })
	if len(selected) != 1 || attr(selected[0], "value") != "organizer" || p.byID("role-form-"+org.ID) == nil {
		t.Errorf("want #role-form-%s with organizer selected in %s", org.ID, p.Body)
	}
	if p.byID("role-"+admin.ID) == nil {
		t.Errorf("the admin is listed too")
	}
}

func TestTheNavShowsWhoIsLoggedInAndTheirPages(t *testing.T) {
	e := newEnv(t)
	p := e.newUser("Ala", users.Customer).page("/")
	if p.text("viewer-name") != "Ala" || p.text("viewer-role") != "customer" || p.byID("logout") == nil {
		t.Errorf("want Ala, customer, and #logout in %s", p.Body)
	}
	for _, id := range []string{"nav-cart", "nav-orders", "nav-tickets"} {
		if p.byID(id) == nil {
			t.Errorf("no #%s for a customer", id)
		}
	}
	if p.byID("nav-users") != nil || p.byID("nav-organizer") != nil {
		t.Errorf("a customer's nav shows no organizer or admin pages")
	}
}

func TestTheScriptAndStyleSheetAreServed(t *testing.T) {
	e := newEnv(t)
	for path, want := range map[string]string{"/static/app.js": "javascript", "/static/app.css": "text/css"} {
		p := e.anonymous().page(path)
		if p.Status != http.StatusOK || !strings.Contains(p.Header.Get("Content-Type"), want) || p.Body == "" {
			t.Errorf("%s: %d %s", path, p.Status, p.Header.Get("Content-Type"))
		}
	}
	if p := e.anonymous().page("/static/nope.js"); p.Status != http.StatusNotFound {
		t.Errorf("an unknown static file: %d, want 404", p.Status)
	}
}

func TestAnOrderInProgressCanBeCancelledAndItsPageFollowsIt(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")
	fan := e.newUser("fan", users.Customer)
	e.Gateway.PendUser(fan.ID) // the bank never answers: the order waits for its payment
	orderID := e.checkout(fan, id, 1)
	e.waitOrder(orderID, func(d orders.Details) bool { return d.Status == orders.AwaitingPayment })

	p := fan.page("/orders/" + orderID)
	if p.text("order-status") != "awaiting_payment" || attr(p.byID("order"), "data-final") != "false" {
		t.Errorf("want an order awaiting payment, not final, in %s", p.Body)
	}
	if b := p.byID("cancel-order"); b == nil || attr(b, "data-order-id") != orderID {
		t.Errorf("want #cancel-order for the order in %s", p.Body)
	}
}

func TestARefusedPaymentShowsTheOrderCancelledWithItsReason(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")
	fan := e.newUser("fan", users.Customer)
	e.Gateway.DeclineUser(fan.ID, "card_declined")
	order := e.buy(fan, id, 1)

	p := fan.page("/orders/" + order.OrderID)
	if st := p.text("order-status"); st != string(order.Status) || !order.Status.Final() || order.Status == orders.Completed {
		t.Errorf("status %q, want the order's final, not completed, status %q", st, order.Status)
	}
	if p.text("order-reason") == "" || p.byID("cancel-order") != nil {
		t.Errorf("want the reason and no cancel in %s", p.Body)
	}
}

func TestACancelledConcertSaysSoAndSellsNothing(t *testing.T) {
	e := newEnv(t)
	id := e.concert(e.newUser("org", users.Organizer), "Nocturnes")
	if err := e.App.CancelConcert(t.Context(), "cancel", concerts.CancelConcert{ConcertID: id, Reason: "storm"}); err != nil {
		t.Fatal(err)
	}
	e.readModelsCaughtUp()
	fan := e.newUser("fan", users.Customer)
	p := fan.page("/concerts/" + id)
	if p.Status != http.StatusOK || p.byID("cancelled") == nil || p.byID("add-to-cart-vip") != nil {
		t.Errorf("want #cancelled and no add-to-cart form in %s", p.Body)
	}
	if fan.page("/").byID("no-concerts") == nil {
		t.Errorf("a cancelled concert is no longer on the list")
	}
}
