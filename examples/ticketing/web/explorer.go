package web

import "net/http"

// explorerRoutes registers the event explorer.
func (s *Server) explorerRoutes(mux *http.ServeMux) {}
