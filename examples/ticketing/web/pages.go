package web

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"esgo.dev/examples/ticketing/users"
)

// ui holds the pages' templates (ui/templates: one layout, one file per
// page) and their static files (ui/static: one style sheet, one script).
//
//go:embed ui/templates ui/static
var ui embed.FS

// pages renders the server-side pages: each is read from the read models
// on the server, never through the JSON API; the script in ui/static only
// sends the actions (add to cart, check out...) to the API and says how
// they went in the aria-live region #status.
//
// Element IDs are stable, for browser tests: #register-form and
// #login-form (#email, #name, #password); concert links carry
// data-concert-id; #add-to-cart-<type> (#quantity-<type>, the type's name
// as [slug] makes it); #cart-lines, #cart-total, #delivery-form
// (#delivery-email, #delivery-courier, #delivery-address, #address-...),
// #checkout; #order-status holds the order's status and #order its
// data-final; #tickets lists #ticket-<ID>; #logout.
type pages struct {
	s    *Server
	tmpl map[string]*template.Template
}

// page is what a page handler returns: the template file to render in the
// layout, the page's title (its h1), and the template's data.
type page struct {
	Template string
	Title    string
	Data     any
}

// view is what the layout renders: the page and who is looking.
type view struct {
	page
	Viewer Viewer
}

// pageFunc reads what a page shows. An error wrapping errNotFound is a 404
// page; any other is a 500.
type pageFunc func(r *http.Request, v Viewer) (page, error)

// pageRoutes registers the server-rendered pages and their static files.
func (s *Server) pageRoutes(mux *http.ServeMux) {
	p := &pages{s: s, tmpl: parsePages()}
	static, _ := fs.Sub(ui, "ui/static") // the directory is embedded: Sub cannot fail
	mux.Handle("GET /static/", http.StripPrefix("/static", http.FileServerFS(static)))

	mux.HandleFunc("GET /{$}", p.open(p.concerts))
	mux.HandleFunc("GET /concerts/{id}", p.open(p.concert))
	mux.HandleFunc("GET /register", p.open(p.register))
	mux.HandleFunc("GET /login", p.open(p.logIn))
	mux.HandleFunc("GET /cart", p.only(p.cart, users.Customer))
	mux.HandleFunc("GET /orders", p.only(p.orders))
	mux.HandleFunc("GET /orders/{id}", p.only(p.order))
	mux.HandleFunc("GET /tickets", p.only(p.tickets))
	mux.HandleFunc("GET /tickets/{id}", p.only(p.ticket))
	mux.HandleFunc("GET /organizer", p.only(p.organizer, users.Organizer))
	mux.HandleFunc("GET /organizer/concerts/new", p.only(p.newConcert, users.Organizer))
	mux.HandleFunc("GET /admin/users", p.only(p.users, users.Admin))
}

// parsePages parses every page with the layout, once. The templates are
// embedded in the binary, so an error is a bug of the build, found by any
// test: it panics.
func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"slug":     slug,
		"inc":      func(i int) int { return i + 1 },
		"datetime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"when":     func(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006, 15:04 MST") },
	}
	files, err := fs.Glob(ui, "ui/templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, f := range files {
		name := strings.TrimPrefix(f, "ui/templates/")
		if name == "layout.html" {
			continue
		}
		out[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(ui, "ui/templates/layout.html", f))
	}
	return out
}

// slug makes a ticket type's name part of an element ID: its letters and
// digits in lower case, each run of anything else one '-' ("Early bird"
// is "early-bird"), so the ID has no space and needs no escaping in a CSS
// selector.
func slug(s string) string {
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	return strings.Join(words, "-")
}

// open serves a page anyone may see.
func (p *pages) open(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, fn) }
}

// only serves a page to logged-in viewers with one of roles (with no
// roles, to any logged-in viewer). An anonymous viewer is sent to log in
// and then come back; a viewer with another role gets a 403 page.
func (p *pages) only(fn pageFunc, roles ...users.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := viewerOf(r.Context())
		switch err := require(v, roles...); {
		case errors.Is(err, errNotLoggedIn):
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		case err != nil:
			p.render(w, r, http.StatusForbidden, page{Template: "error.html", Title: "Forbidden",
				Data: "This page is not for your role (" + string(v.Role) + ")."})
		default:
			p.serve(w, r, fn)
		}
	}
}

func (p *pages) serve(w http.ResponseWriter, r *http.Request, fn pageFunc) {
	pg, err := fn(r, viewerOf(r.Context()))
	switch {
	case errors.Is(err, errNotFound):
		p.render(w, r, http.StatusNotFound, page{Template: "error.html", Title: "Not found",
			Data: "There is nothing here, or it is not yours to see."})
	case err != nil:
		p.s.cfg.Logger.ErrorContext(r.Context(), "web: page failed", slog.String("path", r.URL.Path), slog.Any("err", err))
		p.render(w, r, http.StatusInternalServerError, page{Template: "error.html", Title: "Something went wrong",
			Data: "The page could not be shown. Please try again in a moment."})
	default:
		p.render(w, r, http.StatusOK, pg)
	}
}

// render writes pg in the layout. It renders into a buffer first, so a
// template error is a clean 500, not half a page.
func (p *pages) render(w http.ResponseWriter, r *http.Request, status int, pg page) {
	var buf bytes.Buffer
	t, ok := p.tmpl[pg.Template]
	if !ok {
		p.s.cfg.Logger.ErrorContext(r.Context(), "web: no such page template", slog.String("template", pg.Template))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if err := t.ExecuteTemplate(&buf, "layout", view{page: pg, Viewer: viewerOf(r.Context())}); err != nil {
		p.s.cfg.Logger.ErrorContext(r.Context(), "web: render page", slog.String("template", pg.Template), slog.Any("err", err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show the viewer's own data: no shared cache keeps them. The
	// script is a file of ours; QR codes are data: images.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

// localPath returns next if it is a path on this site, else "/": a log-in
// page must not send its user to another site.
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.Contains(next, `\`) {
		return "/"
	}
	return next
}
