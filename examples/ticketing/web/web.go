// Package web serves the ticketing example over HTTP: a JSON API under
// /api for every command and read model, server-rendered pages for people,
// an event explorer, and the operational endpoints (/metrics, /healthz,
// /readyz).
//
// Requests are authenticated by a session cookie made at log-in. Sessions
// live in a table beside the read models, so they survive a restart; the
// cookie holds a random token and the table only its SHA-256, so a copy of
// the database does not log anyone in. A session names a user, and the
// user's role is read from the user's own stream on every request, so a
// role change takes effect at once.
//
// Every state-changing request passes Go's http.CrossOriginProtection, a
// capped body, and JSON decoding that refuses unknown fields and trailing
// data; a refused request writes nothing. A POST that creates something
// takes its command ID from the Idempotency-Key header, so a client's retry
// is recognised as a repeat by the command handler (see es.CommandHandler).
package web

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"esgo.dev/es"
	"esgo.dev/examples/ticketing/app"
)

// Config configures a [Server].
type Config struct {
	// App is the ticketing application; required.
	App *app.App
	// DB holds the read models and the sessions table; required. It is
	// SQLite or PostgreSQL (the SQL used is the subset both share).
	DB Database
	// Events is the event store the explorer reads; required.
	Events es.Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// SessionTTL is how long a session lasts after log-in (default 7 days).
	SessionTTL time.Duration
	// MaxBodyBytes caps a request body (default 64 KiB).
	MaxBodyBytes int64
	// StripeWebhookSecret, when set, mounts Stripe's webhook at POST
	// /api/webhooks/stripe, verified with this signing secret (see
	// app.App.StripeWebhook). Without it the route does not exist.
	StripeWebhookSecret string
	// LoginFailures is how many failed log-ins an e-mail address or a
	// client address may have in LoginWindow before further attempts are
	// refused with 429 until the window passes (defaults 5 and 15 minutes).
	LoginFailures int
	LoginWindow   time.Duration
	// Clock defaults to es.SystemClock.
	Clock es.Clock
	// Metrics is the registry /metrics serves and the HTTP collectors join
	// (default NewMetricsRegistry()); register the library's collectors
	// (package esprom) with it too.
	Metrics *prometheus.Registry
}

// Database is where the read models are read and the sessions kept:
// *sqlite.Store is one (its DB is a read-only pool, so writes go through
// WriteTx), and app.PostgresReadModels adapts a PostgreSQL store.
type Database interface {
	// DB returns a pool to read with.
	DB() *sql.DB
	// WriteTx runs fn in a write transaction and commits it if fn
	// returns nil.
	WriteTx(ctx context.Context, fn func(tx *sql.Tx) error) error
}

// Server is the web application, an http.Handler.
type Server struct {
	cfg      Config
	webhook  http.Handler // nil without a StripeWebhookSecret
	handler  http.Handler
	sessions *sessionStore
	limiter  *loginLimiter
	keys     *idempotencyKeys
	metrics  *httpMetrics
}

// New sets up the sessions table and returns the server. It does not start
// the application's background work (see app.App.Run).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.App == nil || cfg.DB == nil || cfg.Events == nil {
		return nil, fmt.Errorf("%w: web: App, DB and Events are required", es.ErrInvalidConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.LoginFailures <= 0 {
		cfg.LoginFailures = 5
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = 15 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = es.SystemClock{}
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetricsRegistry()
	}
	metrics, err := newHTTPMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	sessions, err := newSessionStore(ctx, cfg.DB, cfg.Clock, cfg.SessionTTL)
	if err != nil {
		return nil, err
	}
	keys, err := newIdempotencyKeys(ctx, cfg.DB, cfg.Clock)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, sessions: sessions, keys: keys, limiter: newLoginLimiter(cfg.Clock, cfg.LoginFailures, cfg.LoginWindow), metrics: metrics}
	mux := http.NewServeMux()
	if cfg.StripeWebhookSecret != "" {
		wh, err := cfg.App.StripeWebhook(cfg.StripeWebhookSecret)
		if err != nil {
			return nil, fmt.Errorf("web: stripe webhook: %w", err)
		}
		s.webhook = wh
	}
	s.routes(mux)
	// Cross-origin protection refuses state-changing requests a browser
	// sends on behalf of another site (Sec-Fetch-Site / Origin checks);
	// safe methods pass. observe is outermost, so refusals are logged and
	// counted too.
	s.handler = s.observe(http.NewCrossOriginProtection().Handler(s.authenticate(recordRoute(mux))))
	return s, nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes registers every route. The API, the pages and the explorer each
// register their own in their files.
func (s *Server) routes(mux *http.ServeMux) {
	s.authRoutes(mux)
	s.apiRoutes(mux)
	s.pageRoutes(mux)
	s.explorerRoutes(mux)
	s.opsRoutes(mux)
}

// errNotLoggedIn and errWrongRole are refusals of the web layer.
var (
	errNotLoggedIn = errors.New("web: log in first")
	errWrongRole   = errors.New("web: your role may not do this")
)
