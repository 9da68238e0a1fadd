package httpapi

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's Prometheus collectors in a registry of its
// own (so that several servers can live in one process, as in tests). It
// is safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	appends  prometheus.Counter
	batches  prometheus.Histogram
	dropped  prometheus.Counter
	// streamFailures counts event streams the server ended on an error of
	// its own (not a client that left).
	streamFailures prometheus.Counter
	// exportFailures counts history exports the server cut after their
	// first byte on an error of its own.
	exportFailures prometheus.Counter
	commitTime     prometheus.Histogram
	applyLag       prometheus.Histogram
	// lagAheadEvents counts the events applied before their recorded_at
	// by this node's clock, and lagAhead says how far ahead the last one
	// was: their lag cannot be measured, and a 0 in applyLag hid them.
	lagAheadEvents prometheus.Counter
	lagAhead       prometheus.Gauge
	checkpoints    *prometheus.CounterVec
	checkpointTime *prometheus.HistogramVec
	commitErrs     prometheus.Counter
	clockBehind    prometheus.Gauge
	// overloadedReqs counts the 503 overloaded answers by the bound that
	// refused them; connectionsFull the times the connection bound was
	// reached; openConns the open connections; bounds the configured
	// bounds (0: none).
	overloadedReqs  *prometheus.CounterVec
	connectionsFull prometheus.Counter
	openConns       prometheus.Gauge
	bounds          *prometheus.GaugeVec
	head            atomic.Int64
	h               http.Handler
	// routes caches each (route, status)'s request counter and latency
	// observer: WithLabelValues hashes its labels and locks on every call
	// (~1 % of the server's CPU at an offered 10,000 req/s). Routes are the
	// mux's patterns, so it stays small.
	routes sync.Map // routeStatus -> routeMetrics
}

type routeStatus struct {
	route  string
	status int
}

type routeMetrics struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// NewMetrics returns the collectors; New attaches the read model's gauges.
// Create it before the store when the store's commit hook should feed it.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_http_requests_total", Help: "HTTP requests by route pattern and status.",
	}, []string{"route", "code"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_http_request_duration_seconds", Help: "HTTP request latency by route pattern and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "code"})
	m.appends = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_store_appended_events_total", Help: "Events committed to the log by this process.",
	})
	m.batches = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ledger_store_commit_batch_size", Help: "Writes per group-commit transaction: appends, and decided commands whether they appended an event or changed nothing.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ledger_store_commit_duration_seconds", Help: "Duration of group-commit transactions.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18), // to 13 s: a PostgreSQL commit may wait 10 s for the head's lock
	})
	m.commitErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_store_commit_failures_total", Help: "Group-commit transactions that failed as a whole.",
	})
	m.clockBehind = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ledger_store_clock_behind_seconds",
		Help: "How far behind the log's last recorded_at the clock of this process's last commit was (PostgreSQL: the database server's clock): its events were recorded at that time instead, since recorded_at never goes back along the log. 0 when it was not; a large value means an event recorded by a clock once far ahead pins every later event's recorded_at until the clock reaches it, and ledger serve warns.",
	})
	m.applyLag = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ledger_projection_lag_seconds", Help: "Time from an event's commit until the read model announced it applied.",
		// Fine around the 50 ms objective, so its p99 can be read off.
		Buckets: []float64{.001, .002, .005, .01, .02, .03, .04, .05, .06, .08, .1, .15, .2, .3, .5, 1, 2, 5},
	})
	m.lagAheadEvents = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_projection_lag_clock_ahead_events_total",
		Help: "Events applied before their recorded_at by this node's clock (the clock that recorded them is ahead of it): their lag cannot be measured and ledger_projection_lag_seconds leaves them out.",
	})
	m.lagAhead = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ledger_projection_lag_clock_ahead_seconds",
		Help: "How far ahead of this node's clock the recorded_at of the last event applied was; 0 when it was not.",
	})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_sse_dropped_clients_total", Help: "SSE clients dropped for falling behind.",
	})
	m.streamFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_sse_stream_failures_total", Help: "SSE streams ended by an internal failure (logged at error level).",
	})
	m.exportFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_history_export_failures_total", Help: "History exports cut after their first byte by an internal failure (logged at error level).",
	})
	m.checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_wal_checkpoints_total",
		Help: "WAL checkpoints of a SQLite file (log or views), run beside the commits, by result (ok or failed).",
	}, []string{"file", "result"})
	m.checkpointTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ledger_wal_checkpoint_duration_seconds", Help: "Duration of WAL checkpoints of a SQLite file (log or views).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"file"})
	m.addShedding()
	m.reg.MustRegister(m.requests, m.latency, m.appends, m.batches, m.commitTime, m.commitErrs, m.clockBehind, m.applyLag, m.lagAheadEvents, m.lagAhead, m.dropped, m.streamFailures,
		m.exportFailures, m.checkpoints, m.checkpointTime,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.h = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// addShedding creates and registers the collectors of the load shedding.
func (m *Metrics) addShedding() {
	m.overloadedReqs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ledger_http_overloaded_total",
		Help: "Requests answered 503 overloaded, having done nothing, by the bound that refused them (streams or in_flight).",
	}, []string{"bound"})
	m.connectionsFull = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_http_connection_limit_reached_total",
		Help: "Times the open connections reached the connection bound: new ones wait in the listen backlog, and connections idle for a second are closed until the open ones are back under three quarters of it.",
	})
	m.openConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ledger_http_open_connections", Help: "Open client connections.",
	})
	m.bounds = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ledger_http_bound", Help: "The configured bounds: connections, streams, in_flight (0: none).",
	}, []string{"bound"})
	for _, b := range []string{"streams", "in_flight"} {
		m.overloadedReqs.WithLabelValues(b) // each series starts at 0
	}
	m.reg.MustRegister(m.overloadedReqs, m.connectionsFull, m.openConns, m.bounds)
}

// limits records the configured bounds.
func (m *Metrics) limits(c Config) {
	m.bounds.WithLabelValues("connections").Set(float64(c.MaxConnections))
	m.bounds.WithLabelValues("streams").Set(float64(c.streamBound()))
	m.bounds.WithLabelValues("in_flight").Set(float64(c.MaxInFlight))
}

// overloaded counts one request refused past bound.
func (m *Metrics) overloaded(bound string) { m.overloadedReqs.WithLabelValues(bound).Inc() }

// countConn follows a connection's state changes (http.Server.ConnState).
func (m *Metrics) countConn(_ net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		m.openConns.Inc()
	case http.StateClosed, http.StateHijacked:
		m.openConns.Dec()
	}
}

// attach registers the gauges read at scrape time: the applied position,
// the lag in events and the SSE clients.
func (m *Metrics) attach(read ReadModel, sseClients func() float64) error {
	applied := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledger_projection_applied_position", Help: "Position every projection has applied.",
	}, func() float64 { return float64(read.Applied()) })
	lag := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledger_projection_lag_events", Help: "Committed events the projections have not applied yet.",
	}, func() float64 { return float64(max(0, m.head.Load()-read.Applied())) })
	clients := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ledger_sse_clients", Help: "Connected SSE clients.",
	}, sseClients)
	for _, c := range []prometheus.Collector{applied, lag, clients} {
		if err := m.reg.Register(c); err != nil {
			return fmt.Errorf("metrics: %w (a Metrics serves one Server)", err)
		}
	}
	return nil
}

// observeApplied records how long after its commit an event was applied,
// or, when its recorded_at is in now's future, how far ahead the clock
// that recorded it is: observed as 0, such an event claimed to be applied
// at once however late it was.
func (m *Metrics) observeApplied(e domain.Event, now time.Time) {
	if e.RecordedAt.IsZero() {
		return
	}
	lag := now.Sub(e.RecordedAt)
	if lag < 0 {
		m.lagAheadEvents.Inc()
		m.lagAhead.Set(-lag.Seconds())
		return
	}
	m.lagAhead.Set(0)
	m.applyLag.Observe(lag.Seconds())
}

// Checkpoints returns the observer of file's WAL checkpoints (file is "log"
// or "views"), having started its series at 0: a series that first shows
// up at 1 hides that first checkpoint (or failure) from increase() and
// rate(), so an alert on failed checkpoints missed the first one.
func (m *Metrics) Checkpoints(file string) func(took time.Duration, err error) {
	for _, result := range []string{"ok", "failed"} {
		m.checkpoints.WithLabelValues(file, result)
	}
	m.checkpointTime.WithLabelValues(file)
	return func(took time.Duration, err error) { m.ObserveCheckpoint(file, took, err) }
}

// ObserveCheckpoint records one WAL checkpoint of the SQLite file named
// file ("log" or "views"): how long it took and whether it failed.
func (m *Metrics) ObserveCheckpoint(file string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.checkpoints.WithLabelValues(file, result).Inc()
	m.checkpointTime.WithLabelValues(file).Observe(took.Seconds())
}

// ObserveCommit records one group commit of the store: how many appends
// it carried, how many events it committed, how long it took, and whether
// the whole transaction failed.
func (m *Metrics) ObserveCommit(appends, events int, took time.Duration, failed bool) {
	m.batches.Observe(float64(appends))
	m.appends.Add(float64(events))
	m.commitTime.Observe(took.Seconds())
	if failed {
		m.commitErrs.Inc()
	}
}

// ObserveClockBehind records how far behind the log's last recorded_at
// the clock of a commit was (0: not behind).
func (m *Metrics) ObserveClockBehind(d time.Duration) {
	m.clockBehind.Set(d.Seconds())
}

// advanceHead raises the known log head (for the lag gauge).
func (m *Metrics) advanceHead(pos int64) {
	for {
		cur := m.head.Load()
		if pos <= cur || m.head.CompareAndSwap(cur, pos) {
			return
		}
	}
}

func (m *Metrics) observeRequest(route string, status int, d time.Duration) {
	key := routeStatus{route, status}
	rm, ok := m.routes.Load(key)
	if !ok {
		code := strconv.Itoa(status)
		rm, _ = m.routes.LoadOrStore(key, routeMetrics{m.requests.WithLabelValues(route, code),
			m.latency.WithLabelValues(route, code)})
	}
	rm.(routeMetrics).requests.Inc()
	rm.(routeMetrics).latency.Observe(d.Seconds())
}

func (m *Metrics) handler() http.Handler { return m.h }
