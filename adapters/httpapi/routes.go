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
	s.handle("GET /v1/targets", s.targets)
	s.handle("GET /v1/targets/{type}/{id}", s.target)
	s.handle("GET /v1/targets/{type}/{id}/{kind}", s.actors)
	s.handle("GET /v1/users/{user}/{kind}", s.collection)
	s.handle("GET /v1/events", s.events)
	s.handle("GET /v1/events/stream", s.stream)
	s.registerSite()
}

func (s *Server) handle(pattern string, h handlerFunc) {
	method, path, _ := strings.Cut(pattern, " ")
	s.routes = append(s.routes, route{method: method, pattern: path})
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
