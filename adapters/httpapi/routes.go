package httpapi

import (
	"net/http"
	"strings"
)

// route is one served method and pattern; the OpenAPI test walks them.
type route struct {
	method, pattern string
}

// handlerFunc is a handler that returns its error for the one mapping in
// problemFor.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) registerRoutes() {
	s.handle("GET /healthz", s.healthz)
	s.handle("GET /readyz", s.readyz)
	s.handle("GET /metrics", s.serveMetrics)
	s.handle("GET /openapi.json", s.openapi)
	s.handle("PUT /v1/targets/{type}/{id}/{kind}/{user}", s.write(true))
	s.handle("DELETE /v1/targets/{type}/{id}/{kind}/{user}", s.write(false))
	s.handle("GET /v1/targets", s.targets, "t", "viewer", "min_position")
	s.handle("GET /v1/targets/{type}/{id}", s.target, "viewer", "min_position")
	s.handle("GET /v1/targets/{type}/{id}/{kind}", s.actors, "limit", "cursor", "min_position")
	s.handle("GET /v1/users/{user}/{kind}", s.collection, "type", "limit", "cursor", "min_position")
	s.handle("GET /v1/events", s.events, append([]string{"after", "min_position"}, historyFilters...)...)
	// The stream refuses the history's filters with a reason of its own.
	s.handle("GET /v1/events/stream", s.stream, append([]string{"after", "min_position", "t"}, historyFilters...)...)
	s.registerSite()
}

// handle serves pattern with h. query names the query parameters the
// route takes besides log (which every route takes): any other is 400
// when the handler parses its parameters (Server.newParams).
func (s *Server) handle(pattern string, h handlerFunc, query ...string) {
	method, path, _ := strings.Cut(pattern, " ")
	s.routes = append(s.routes, route{method: method, pattern: path})
	if s.queries == nil {
		s.queries = map[string][]string{}
	}
	s.queries[pattern] = query
	s.mux.HandleFunc(pattern, s.serve(h))
}

// serve adapts h to the mux: its error becomes the problem answer.
func (s *Server) serve(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	}
}

// Routes returns the served routes as "METHOD /path/{param}" strings.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.method + " " + rt.pattern
	}
	return out
}
