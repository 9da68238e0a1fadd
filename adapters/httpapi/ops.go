package httpapi

import (
	"context"
	_ "embed"
	"fmt"
	"net/http"
	"time"
)

//go:embed openapi.json
var openapiDoc []byte

// OpenAPI returns the embedded OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openapiDoc...) }

// noStore keeps a cache between a probe (a load balancer, Prometheus) and
// the node from answering for it: a kept "ready" outlives the node.
func noStore(w http.ResponseWriter) { w.Header().Set("Cache-Control", "no-store") }

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	noStore(w)
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when the store accepts writes, no projection failed,
// and the projections reach the log head within ReadyLag.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if status, opening := s.deps.Opening.pending(); opening {
		return s.notReady(w, r, "starting: "+status)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyLag)
	defer cancel()
	if err := s.deps.Writable(ctx); err != nil {
		return s.notReady(w, r, fmt.Sprintf("the store is not writable: %v", err))
	}
	if err := s.deps.Read.Stopped(); err != nil {
		return s.notReady(w, r, "the read model is stopped until this node is restarted"+storeReason(err))
	}
	if err := s.deps.Read.Err(); err != nil {
		return s.notReady(w, r, err.Error()) // "projection failed: <name>: <cause>"
	}
	appliedBefore := s.deps.Read.Applied()
	head, err := s.deps.Log.LastPosition(ctx)
	if err != nil {
		return s.notReady(w, r, fmt.Sprintf("the log head cannot be read: %v", err))
	}
	if err := s.deps.Read.WaitFor(ctx, max(head, s.cfg.StartPosition)); err != nil {
		return s.notReady(w, r, fmt.Sprintf("projections at %d, log head at %d", s.deps.Read.Applied(), head))
	}
	// Read before the head: this log's head is never below it.
	if appliedBefore > head {
		return s.notReady(w, r, fmt.Sprintf("projections at %d, beyond the log head %d: the log was replaced under this node (restart it)", appliedBefore, head))
	}
	noStore(w)
	return writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "head": head, "applied": s.deps.Read.Applied()})
}

// notReady answers 503 with the reason, which the access line carries. It
// logs no "request failed" warning: load balancers probe every few
// seconds, and what makes a node not ready is logged by what failed.
func (s *Server) notReady(w http.ResponseWriter, r *http.Request, detail string) error {
	s.quietly(w, r, &httpError{status: 503, slug: "not-ready", detail: detail, retryAfter: s.cfg.ReadyLag})
	return nil
}

// quietly answers err's problem as fail does, but logs no "request
// failed" warning: for a state of the node that is logged once where it
// arises, and that probes and clients ask about every few seconds.
func (s *Server) quietly(w http.ResponseWriter, r *http.Request, err error) {
	if info := infoFrom(r.Context()); info != nil {
		info.err = err
	}
	writeProblem(w, problemFor(err, false))
}

// serveMetrics refreshes the log head first, so the lag gauge also sees
// events other processes appended.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	// Bounded: a database that stops answering must not hold the scrape
	// (Prometheus gives up after 10 s, and every metric goes missing
	// during the incident); the gauge keeps the last head it knew.
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if !s.logSet.Load() { // the log is still opening
	} else if head, err := s.deps.Log.LastPosition(ctx); err == nil {
		s.metrics.advanceHead(head)
	}
	noStore(w)
	s.metrics.handler().ServeHTTP(w, r)
	return nil
}

// openapi answers the document with its length, as sendJSON does, so
// that HEAD carries the Content-Length of GET's body too (net/http
// measures only a body it has whole in its buffer, and sent this one in
// chunks).
func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "no-cache")
	sendJSON(w, http.StatusOK, openapiDoc)
	return nil
}
