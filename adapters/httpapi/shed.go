package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/netutil"
)

// The node's own load shedding: a bound on connections (a listener that
// stops accepting past it, see Config.MaxConnections), one on live
// streams and one on requests in flight, each past which the node answers
// 503 overloaded at once instead of queueing without bound.

// shedRetryAfter is the Retry-After of a 503 overloaded.
const shedRetryAfter = time.Second

// unbounded routes are never refused for load: the probes, so that a
// node under load is seen alive and its metrics read.
var unbounded = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// streamRoute is the live event stream's pattern: it holds its
// connection for as long as it runs, and has a bound of its own.
const streamRoute = "GET /v1/events/stream"

// gauge counts what is in use against a bound (0: none).
type gauge struct {
	n     atomic.Int64
	bound int64
}

// take counts one more unless the bound is reached.
func (g *gauge) take() bool {
	if g.n.Add(1) > g.bound && g.bound > 0 {
		g.n.Add(-1)
		return false
	}
	return true
}

func (g *gauge) give() { g.n.Add(-1) }

// admit counts a request of the route pattern against its bound and
// returns the function that releases it, or the 503 overloaded of a
// request past the bound (which has done nothing: a write refused so was
// never appended, and may be retried as it is).
func (s *Server) admit(pattern string) (release func(), err error) {
	switch {
	case unbounded[pattern]:
		return func() {}, nil
	case pattern == streamRoute:
		if !s.streams.take() {
			s.metrics.overloaded("streams")
			return nil, errOverloaded(fmt.Sprintf("this node serves at most %d live event streams and has as many open",
				s.streams.bound))
		}
		return s.streams.give, nil
	}
	if !s.inFlight.take() {
		s.metrics.overloaded("in_flight")
		return nil, errOverloaded(fmt.Sprintf("this node serves at most %d requests at once and is serving as many", s.inFlight.bound))
	}
	return s.inFlight.give, nil
}

func errOverloaded(d string) error {
	return &httpError{status: 503, slug: "overloaded", detail: d + "; nothing was done: retry after Retry-After",
		retryAfter: shedRetryAfter}
}

// connLimit keeps a server within Config.MaxConnections: its listener
// (netutil.LimitListener) stops accepting at the bound, and its ConnState
// hook turns keep-alives off at the bound (closing the idle connections,
// which would otherwise hold the waiting clients out until their idle
// timeout) and on again below three quarters of it.
type connLimit struct {
	srv     *http.Server
	metrics *Metrics
	bound   int64
	open    atomic.Int64
	mu      sync.Mutex  // orders the keep-alive switches
	shed    atomic.Bool // keep-alives are off; switched under mu
}

// limit wraps ln and srv for the bound (nothing when it is 0).
func (s *Server) limit(ln net.Listener, srv *http.Server) net.Listener {
	if s.cfg.MaxConnections == 0 {
		srv.ConnState = s.metrics.countConn
		return ln
	}
	c := &connLimit{srv: srv, metrics: s.metrics, bound: int64(s.cfg.MaxConnections)}
	srv.ConnState = c.track
	return netutil.LimitListener(ln, s.cfg.MaxConnections)
}

func (c *connLimit) track(nc net.Conn, state http.ConnState) {
	c.metrics.countConn(nc, state)
	var n int64
	switch state {
	case http.StateNew:
		n = c.open.Add(1)
	case http.StateClosed, http.StateHijacked:
		n = c.open.Add(-1)
	default:
		return
	}
	if n >= c.bound || n <= c.bound*3/4 {
		c.keepAlives(n < c.bound)
	}
}

// keepAlives switches keep-alives on or off when they are not already.
func (c *connLimit) keepAlives(on bool) {
	if c.shed.Load() == !on {
		return // the common case, without the lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shed.Load() == !on {
		return
	}
	c.shed.Store(!on)
	if !on {
		c.metrics.connectionsFull.Inc()
	}
	c.srv.SetKeepAlivesEnabled(on)
}
