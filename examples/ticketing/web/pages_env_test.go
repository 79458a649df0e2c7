package web_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/carts"
	"esgo.dev/examples/ticketing/concerts"
	"esgo.dev/examples/ticketing/money"
	"esgo.dev/examples/ticketing/orders"
)

// htmlPage is a page as a browser got it, without following redirects.
type htmlPage struct {
	t      *testing.T
	Status int
	Header http.Header
	Body   string
	Doc    *html.Node
}

// page GETs path as u. An HTML answer other than a redirect is checked
// as every page must be (see checkPage).
func (u *user) page(path string) *htmlPage {
	u.env.t.Helper()
	c := *u.c
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(u.env.Server.URL + path)
	if err != nil {
		u.env.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		u.env.t.Fatal(err)
	}
	p := &htmlPage{t: u.env.t, Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") && (p.Status < 300 || p.Status >= 400) {
		if p.Doc, err = html.Parse(strings.NewReader(p.Body)); err != nil {
			u.env.t.Fatalf("%s: %v", path, err)
		}
		checkPage(u.env.t, path, p)
	}
	return p
}

// checkPage fails the test unless the page is well-formed (every element
// closed in order) and accessible in the ways tests can see: a language,
// one h1, unique IDs, a label for every input, alt text on every image,
// and a status region that is announced.
func checkPage(t *testing.T, path string, p *htmlPage) {
	t.Helper()
	if err := balanced(p.Body); err != nil {
		t.Errorf("%s: not well-formed: %v", path, err)
	}
	if h := p.all(func(n *html.Node) bool { return n.Data == "html" }); len(h) != 1 || attr(h[0], "lang") == "" {
		t.Errorf("%s: want <html lang=...>", path)
	}
	if h1 := p.all(func(n *html.Node) bool { return n.Data == "h1" }); len(h1) != 1 {
		t.Errorf("%s: %d h1 elements, want 1", path, len(h1))
	}
	ids := map[string]bool{}
	labels := map[string]bool{}
	for _, n := range p.all(func(*html.Node) bool { return true }) {
		if id := attr(n, "id"); id != "" {
			if ids[id] {
				t.Errorf("%s: id %q twice", path, id)
			}
			ids[id] = true
		}
		if n.Data == "label" {
			labels[attr(n, "for")] = true
		}
	}
	for _, n := range p.all(func(n *html.Node) bool { return n.Data == "input" || n.Data == "select" || n.Data == "textarea" }) {
		if typ := attr(n, "type"); typ == "hidden" || typ == "submit" || typ == "button" {
			continue
		}
		if id := attr(n, "id"); id == "" || !labels[id] {
			t.Errorf("%s: a %s (id %q) without a label", path, n.Data, id)
		}
	}
	for _, n := range p.all(func(n *html.Node) bool { return n.Data == "img" }) {
		if !hasAttr(n, "alt") {
			t.Errorf("%s: an img without alt", path)
		}
	}
	if s := p.byID("status"); s == nil || attr(s, "aria-live") == "" {
		t.Errorf("%s: no #status aria-live region", path)
	}
}

// isVoid reports whether an element has no end tag.
func isVoid(name string) bool {
	switch name {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr":
		return true
	}
	return false
}

// balanced reports an end tag that does not close the element open last,
// or an element left open: the HTML parser would mend either silently.
func balanced(body string) error {
	z := html.NewTokenizer(strings.NewReader(body))
	var open []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if errors.Is(z.Err(), io.EOF) {
				if len(open) > 0 {
					return errors.New("unclosed <" + strings.Join(open, "> <") + ">")
				}
				return nil
			}
			return z.Err()
		case html.StartTagToken:
			name, _ := z.TagName()
			if !isVoid(string(name)) {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				return errors.New("</" + string(name) + "> closes <" + strings.Join(open, "> <") + ">")
			}
			open = open[:len(open)-1]
		}
	}
}

// all returns the elements for which match is true, in document order.
func (p *htmlPage) all(match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if p.Doc == nil {
		return nil
	}
	for n := range p.Doc.Descendants() {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
	}
	return out
}

// byID returns the element with the ID, or nil.
func (p *htmlPage) byID(id string) *html.Node {
	if n := p.all(func(n *html.Node) bool { return attr(n, "id") == id }); len(n) > 0 {
		return n[0]
	}
	return nil
}

// text returns the text of the element with the ID, or fails the test.
func (p *htmlPage) text(id string) string {
	p.t.Helper()
	n := p.byID(id)
	if n == nil {
		p.t.Fatalf("no #%s in %s", id, p.Body)
	}
	return textOf(n)
}

// textOf returns the text in n, a space between elements, its spaces
// collapsed.
func textOf(n *html.Node) string {
	var texts []string
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			texts = append(texts, d.Data)
		}
	}
	return strings.Join(strings.Fields(strings.Join(texts, " ")), " ")
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}

// withAttr matches elements whose attribute key is val.
func withAttr(key, val string) func(*html.Node) bool {
	return func(n *html.Node) bool { return attr(n, key) == val }
}

// pln is an amount in złoty.
func pln(amount int64) money.Money { return money.Money{Amount: amount, Currency: "PLN"} }

// concert creates a concert of organizer's, a week from now, with a VIP
// type (300 PLN, 10 seats) and an Early bird type (120 PLN, 100 seats),
// and waits for the read models.
func (e *env) concert(organizer *user, name string) string {
	e.t.Helper()
	id := es.NewID()
	err := e.App.CreateConcert(context.Background(), es.NewID(), concerts.CreateConcert{ConcertID: id, Name: name,
		Artist: "Chopin", StartsAt: time.Now().Add(7 * 24 * time.Hour), Venue: "Warsaw Philharmonic",
		TicketTypes: []concerts.TicketType{{Name: "VIP", Price: pln(30000)}, {Name: "Early bird", Price: pln(12000)}},
		Capacity:    map[string]int{"VIP": 10, "Early bird": 100}, OrganizerID: organizer.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	e.readModelsCaughtUp()
	return id
}

// readModelsCaughtUp waits until the read models have caught up.
func (e *env) readModelsCaughtUp() {
	e.t.Helper()
	if err := e.App.WaitForReadModels(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// buy puts n VIP tickets of the concert in the customer's cart, checks
// out with e-mail delivery and waits until the order is final in the
// read model; it returns the order's details.
func (e *env) buy(customer *user, concertID string, n int) orders.Details {
	e.t.Helper()
	return e.waitOrder(e.checkout(customer, concertID, n), func(d orders.Details) bool { return d.Status.Final() })
}

// checkout puts n VIP tickets of the concert in the customer's cart and
// checks out with e-mail delivery; it returns the order's ID.
func (e *env) checkout(customer *user, concertID string, n int) string {
	e.t.Helper()
	ctx := context.Background()
	if err := e.App.AddToCart(ctx, es.NewID(), customer.ID, concertID, "VIP", n); err != nil {
		e.t.Fatal(err)
	}
	if err := e.App.ChooseDelivery(ctx, es.NewID(), customer.ID, carts.Delivery{Method: carts.ByEmail, Email: customer.Email}); err != nil {
		e.t.Fatal(err)
	}
	placed, err := e.App.Checkout(ctx, es.NewID(), customer.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return placed[concertID]
}

// waitOrder waits until the order's details in the read model satisfy
// done, and returns them.
func (e *env) waitOrder(orderID string, done func(orders.Details) bool) orders.Details {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if err := e.App.WaitForReadModels(ctx); err != nil {
			e.t.Fatalf("order %s: %v", orderID, err)
		}
		d, err := orders.DetailsOf(ctx, e.Store.DB(), orderID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			e.t.Fatal(err)
		}
		if err == nil && done(d) {
			return d
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("order %s: %+v, still not as wanted", orderID, d)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
