package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"esgo.dev/examples/ticketing/explorer"
	"esgo.dev/examples/ticketing/orders"
	"esgo.dev/examples/ticketing/users"
)

// explorerFS holds the explorer's templates: a layout of its own and one
// file per page, apart from the other pages' ui/ files.
//
//go:embed ui/explorer
var explorerFS embed.FS

// explorerPages are the explorer's pages by name, each the layout with
// the page's own "content".
type explorerPages map[string]*template.Template

// explorerRoutes registers the event explorer: pages under /explorer and
// their JSON twins under /api/explorer, for admins only (events hold
// password hashes, which the explorer redacts anyway).
func (s *Server) explorerRoutes(mux *http.ServeMux) {
	pages, err := parseExplorerPages()
	if err != nil {
		// The templates are embedded: a parse error is a bug that every
		// test of the explorer reports, so the pages answer 500 and say so.
		s.cfg.Logger.Error("web: explorer templates", "err", err)
	}
	page := func(name string, view func(*http.Request) (any, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err == nil {
				s.explorerPage(w, r, pages, name, view)
				return
			}
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}
	mux.HandleFunc("GET /explorer", page("streams", s.explorerStreams))
	mux.Handle("GET /explorer/{$}", http.RedirectHandler("/explorer", http.StatusMovedPermanently))
	mux.HandleFunc("GET /explorer/streams/{id...}", page("stream", s.explorerStream))
	mux.HandleFunc("GET /explorer/correlations/{id}", page("correlation", s.explorerCorrelation))
	mux.HandleFunc("GET /explorer/status", page("status", s.explorerStatus))
	mux.HandleFunc("GET /explorer/search", func(w http.ResponseWriter, r *http.Request) {
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		s.explorerSearch(w, r, pages)
	})
	mux.HandleFunc("GET /api/explorer/streams", s.explorerAPI(s.explorerStreams))
	mux.HandleFunc("GET /api/explorer/streams/{id...}", s.explorerAPI(s.explorerStream))
	mux.HandleFunc("GET /api/explorer/correlations/{id}", s.explorerAPI(s.explorerCorrelation))
	mux.HandleFunc("GET /api/explorer/status", s.explorerAPI(s.explorerStatus))
}

// parseExplorerPages parses the layout once per page, with that page.
func parseExplorerPages() (explorerPages, error) {
	funcs := template.FuncMap{
		"short": func(id string) string {
			if len(id) > 8 {
				return id[:8]
			}
			return id
		},
		"time":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") },
		"indent": func(depth int) string { return fmt.Sprintf("padding-left: %.1fem", 1.5*float64(depth)) },
		"json":   func(b []byte) string { return indentJSON(b) },
		"query":  url.QueryEscape,
		"path":   url.PathEscape,
	}
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(explorerFS, "ui/explorer/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(explorerFS, "ui/explorer/*.html")
	if err != nil {
		return nil, err
	}
	pages := explorerPages{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "ui/explorer/"), ".html")
		if name == "layout" {
			continue
		}
		t, err := layout.Clone()
		if err == nil {
			t, err = t.ParseFS(explorerFS, n)
		}
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// explorerPage renders a page with what view returns, or an error page.
func (s *Server) explorerPage(w http.ResponseWriter, r *http.Request, pages explorerPages, name string, view func(*http.Request) (any, error)) {
	data, err := s.explorerView(r, view)
	if errors.Is(err, errRedirected) {
		return
	}
	status := http.StatusOK
	t := pages[name]
	if err != nil {
		t = pages["error"]
		status = statusOf(err)
		msg := err.Error()
		if status >= 500 {
			s.cfg.Logger.ErrorContext(r.Context(), "web: explorer page failed", "path", r.URL.Path, "err", err)
			msg = "internal error"
		}
		data = explorerError{Status: status, Message: msg}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout.html", data); err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "web: explorer page", "path", r.URL.Path, "err", err)
	}
}

// explorerError is what an error page shows.
type explorerError struct {
	Status  int
	Message string
}

// explorerAPI serves view as JSON.
func (s *Server) explorerAPI(view func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		data, err := s.explorerView(r, view)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, data)
	}
}

// explorerView runs view for an admin.
func (s *Server) explorerView(r *http.Request, view func(*http.Request) (any, error)) (any, error) {
	if err := require(viewerOf(r.Context()), users.Admin); err != nil {
		return nil, err
	}
	return view(r)
}

// explorerSearch takes a stream ID, an order ID or a correlation ID and
// redirects to what it names: a stream, the timeline of the purchase that
// placed an order, or a correlation's timeline. It tries them in that
// order: a correlation ID may have been picked by a client, so it never
// shadows a stream or an order of the same text.
func (s *Server) explorerSearch(w http.ResponseWriter, r *http.Request, pages explorerPages) {
	s.explorerPage(w, r, pages, "error", func(r *http.Request) (any, error) {
		ctx, db := r.Context(), s.cfg.DB.DB()
		q := strings.TrimSpace(r.URL.Query().Get("q"))
		if q == "" {
			return nil, redirectTo(w, r, "/explorer", nil)
		}
		if ok, err := explorer.StreamExists(ctx, db, q); err != nil || ok {
			return nil, redirectTo(w, r, "/explorer/streams/"+url.PathEscape(q), err)
		}
		id, err := explorer.StreamCorrelation(ctx, db, orders.Stream(q))
		if !errors.Is(err, explorer.ErrNotFound) {
			return nil, redirectTo(w, r, "/explorer/correlations/"+url.PathEscape(id), err)
		}
		if ok, err := explorer.CorrelationExists(ctx, db, q); err != nil || ok {
			return nil, redirectTo(w, r, "/explorer/correlations/"+url.PathEscape(q), err)
		}
		return nil, fmt.Errorf("%w: no stream, order or correlation %q", errNotFound, q)
	})
}

// errRedirected tells explorerPage that the view answered with a
// redirect, so there is nothing more to write.
var errRedirected = errors.New("web: redirected")

// redirectTo answers with a redirect to target unless err is set.
func redirectTo(w http.ResponseWriter, r *http.Request, target string, err error) error {
	if err != nil {
		return err
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return errRedirected
}
