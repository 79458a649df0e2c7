package web

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"esgo.dev/es"
)

// opsRoutes registers /metrics, /healthz and /readyz.
func (s *Server) opsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Metrics, promhttp.HandlerOpts{}))
	// Alive: the process serves requests.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
}

// ready reports whether requests can be served: the read-model database
// and the event store answer.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	check := map[string]string{"readModels": "ok", "events": "ok"}
	status := http.StatusOK
	if err := s.cfg.DB.DB().PingContext(ctx); err != nil {
		check["readModels"], status = err.Error(), http.StatusServiceUnavailable
	}
	for _, err := range s.cfg.Events.ReadAll(ctx, es.AllQuery{Limit: 1}) {
		if err != nil {
			check["events"], status = err.Error(), http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, check)
}

// httpMetrics are the collectors of the requests served.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// NewMetricsRegistry returns a registry with the Go runtime's and the
// process's collectors, for Config.Metrics and the library's collectors
// (package esprom).
func NewMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// requestInfo is filled in as a request goes through the handlers: the
// route pattern is only known once the mux has matched.
type requestInfo struct {
	route string
	// request is the decoded body encoded again (see decode), for the
	// Idempotency-Key's fingerprint.
	request []byte
	// claimedKey is the command ID whose Idempotency-Key this request
	// recorded first (see Server.commandID): given back if it fails.
	claimedKey string
}

type requestInfoKey struct{}

// recordRoute runs the mux and notes the pattern it matched (the mux sets
// it on the request it was given).
func recordRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
			info.route = r.Pattern
		}
	})
}

// observe gives each request a correlation ID (the client's
// X-Correlation-ID if it is a UUID), puts it into the context's
// es.Metadata so that the events the request causes carry it, returns it
// in the response header, logs the request, and counts it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		// Only a UUID is taken from a client: free text could be made to
		// look like a stream or an order ID in the explorer, or fill logs.
		id := r.Header.Get("X-Correlation-ID")
		if !es.ValidID(id) {
			id = es.NewID()
		}
		info := &requestInfo{}
		ctx := context.WithValue(r.Context(), requestInfoKey{}, info)
		ctx = es.WithMetadata(ctx, es.Metadata{CorrelationID: id})
		w.Header().Set("X-Correlation-ID", id)
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			// Responses hold people's data (tickets, billing, the
			// explorer's events): no cache may keep them. The static files
			// are the same for all and keep the file server's caching.
			w.Header().Set("Cache-Control", "no-store")
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(ctx))
		took := time.Since(start)
		route := info.route
		if route == "" {
			route = "unmatched" // refused before routing, or no route: keep label values few
		}
		method := methodLabel(r.Method)
		s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(method, route).Observe(took.Seconds())
		// The path, never the body or the query: no password or token is
		// logged.
		s.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "http request", slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.String("route", route), slog.Int("status", sw.status),
			slog.Duration("took", took))
	})
}

// methodLabel is the metric label of a request method: a client may send
// any token as its method, so those outside the standard set are "OTHER",
// which keeps the label values few.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
		http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}

// statusWriter remembers the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// LogHandler wraps h so that every record logged with a context that
// carries es.Metadata gets its correlation ID as the attribute
// "correlation_id": the requests' logs and the application's, for the
// same purchase, then share one ID.
func LogHandler(h slog.Handler) slog.Handler { return correlationHandler{h} }

type correlationHandler struct{ slog.Handler }

func (h correlationHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := es.MetadataFrom(ctx).CorrelationID; id != "" {
		r.AddAttrs(slog.String("correlation_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h correlationHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return correlationHandler{h.Handler.WithAttrs(as)}
}

func (h correlationHandler) WithGroup(name string) slog.Handler {
	return correlationHandler{h.Handler.WithGroup(name)}
}
