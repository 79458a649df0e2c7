package web

import "net/http"

// apiRoutes registers the JSON API of the modules' commands and read
// models.
func (s *Server) apiRoutes(mux *http.ServeMux) {}
