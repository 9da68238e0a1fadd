package httpapi

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Opening is the state of a read model that its server already serves
// while it opens: a node that builds its views file from a long log at
// start (tens of seconds for ten million events) listens from the start,
// so that a liveness probe of /healthz sees a live process instead of a
// refused connection (and an orchestrator does not kill it mid-build, to
// start the build over), and a port already taken fails at once rather
// than after the build.
//
// Until Done, /healthz, /metrics, /openapi.json and the page (Deps.Site)
// answer as ever, /readyz answers 503 not-ready with the status last
// reported, every other route 503 "starting" (with Retry-After), and no
// answer carries a Ledger-Position: the read model has none yet. The
// server calls nothing of Deps.Read but Applied (for the metrics' gauges),
// and nothing of Deps.Ledger, before Done. A nil *Opening is done.
//
// A server may be built before its log is open too (Deps.Log nil, then
// Server.SetLog before Done): until SetLog its answers carry no
// Ledger-Log, a request naming a log is not compared with it (its route
// answers 503 starting), and /metrics leaves the log's head at 0.
type Opening struct {
	status atomic.Pointer[string]
	done   chan struct{}
	once   sync.Once
}

// NewOpening returns an opening whose 503s say status.
func NewOpening(status string) *Opening {
	o := &Opening{done: make(chan struct{})}
	o.Report(status)
	return o
}

// Report replaces what the opening is doing, which the 503s say.
func (o *Opening) Report(status string) { o.status.Store(&status) }

// Done marks the read model open: the server answers every route from
// now on. It is safe to call more than once.
func (o *Opening) Done() { o.once.Do(func() { close(o.done) }) }

// pending returns the reported status and true until Done.
func (o *Opening) pending() (string, bool) {
	if o == nil {
		return "", false
	}
	select {
	case <-o.done:
		return "", false
	default:
		return *o.status.Load(), true
	}
}

// answersWhileOpening is the routes served before the read model is open:
// the operations endpoints, and the page with its assets (Deps.Site), whose
// client retries the API's 503s; a browser showed the 503's JSON instead.
var answersWhileOpening = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /openapi.json": true,
	"GET /{$}": true, "GET /assets/{file...}": true, "GET /assets": true,
}

// errStarting is the 503 of a route that needs the read model while it
// is still opening.
func errStarting(status string) error {
	return &httpError{status: http.StatusServiceUnavailable, slug: "starting",
		detail: "this node is starting and cannot answer yet: " + status, retryAfter: 5 * time.Second}
}
