package web

// RoutePatterns returns the patterns of the auth and API routes, as the
// server registers them, for the tests that walk every route.
func (s *Server) RoutePatterns() []string {
	var out []string
	for _, rt := range append(s.authRouteList(), s.apiRouteList()...) {
		out = append(out, rt.pattern)
	}
	return out
}
