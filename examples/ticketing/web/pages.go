package web

import "net/http"

// pageRoutes registers the server-rendered pages.
func (s *Server) pageRoutes(mux *http.ServeMux) {}
