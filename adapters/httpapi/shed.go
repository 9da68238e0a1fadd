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
// (netutil.LimitListener) stops accepting at the bound, so newcomers wait
// in the listen backlog; while it is full (from the bound until three
// quarters of it), a connection idle for idleGrace is closed, so that idle
// keep-alive clients do not hold the newcomers out until their idle
// timeout. Only connections idle that long are closed: closing every idle
// one at once (http.Server.SetKeepAlivesEnabled) raced the next request
// of busy clients, which got EOF or a reset.
type connLimit struct {
	metrics *Metrics
	bound   int64
	open    atomic.Int64
	full    atomic.Bool
	mu      sync.Mutex
	// idle holds the idle connections, each with its closing timer while
	// full (nil otherwise).
	idle map[net.Conn]*time.Timer
}

// idleGrace is how long a connection may stay idle while the connection
// bound is reached.
var idleGrace = time.Second

// limit wraps ln and srv for the bound (nothing when it is 0).
func (s *Server) limit(ln net.Listener, srv *http.Server) net.Listener {
	if s.cfg.MaxConnections == 0 {
		srv.ConnState = s.metrics.countConn
		return ln
	}
	c := &connLimit{metrics: s.metrics, bound: int64(s.cfg.MaxConnections), idle: map[net.Conn]*time.Timer{}}
	srv.ConnState = c.track
	return netutil.LimitListener(ln, s.cfg.MaxConnections)
}

func (c *connLimit) track(nc net.Conn, state http.ConnState) {
	c.metrics.countConn(nc, state)
	switch state {
	case http.StateNew:
		if c.open.Add(1) >= c.bound {
			c.setFull(true)
		}
	case http.StateIdle:
		c.mu.Lock()
		var t *time.Timer
		if c.full.Load() {
			t = c.closeLater(nc)
		}
		c.idle[nc] = t
		c.mu.Unlock()
	case http.StateActive:
		c.forget(nc)
	case http.StateClosed, http.StateHijacked:
		c.forget(nc)
		if c.open.Add(-1) <= c.bound*3/4 {
			c.setFull(false)
		}
	}
}

// forget drops nc from the idle connections, stopping its timer.
func (c *connLimit) forget(nc net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.idle[nc]; t != nil {
		t.Stop()
	}
	delete(c.idle, nc)
}

// setFull marks the bound reached or left, starting or stopping the idle
// connections' timers.
func (c *connLimit) setFull(full bool) {
	if c.full.Load() == full {
		return // the common case, without the lock
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.full.Load() == full {
		return
	}
	c.full.Store(full)
	if full {
		c.metrics.connectionsFull.Inc()
	}
	for nc, t := range c.idle {
		if full {
			c.idle[nc] = c.closeLater(nc)
		} else if t != nil {
			t.Stop()
			c.idle[nc] = nil
		}
	}
}

// closeLater closes nc after idleGrace unless it is no longer idle, or
// the bound was left, by then. Called under mu.
func (c *connLimit) closeLater(nc net.Conn) *time.Timer {
	var t *time.Timer
	t = time.AfterFunc(idleGrace, func() {
		c.mu.Lock()
		still := c.idle[nc] == t
		c.mu.Unlock()
		if still {
			_ = nc.Close()
		}
	})
	return t
}
