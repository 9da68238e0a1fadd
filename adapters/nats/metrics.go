package nats

import (
	"math"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the relay's Prometheus collectors in a registry of its own
// (several relays can live in one process, as in tests). It is safe for
// concurrent use.
type Metrics struct {
	reg       *prometheus.Registry
	position  prometheus.Gauge
	head      prometheus.Gauge
	lag       prometheus.Gauge
	published prometheus.Counter
	failures  prometheus.Counter
	headFails prometheus.Counter
	lockHeld  prometheus.Gauge
}

// NewMetrics returns the relay's collectors, with Go and process metrics.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	m.position = gauge("ledger_relay_position", "Log position of the last event the stream acknowledged.")
	m.head = gauge("ledger_relay_log_position", "Position of the newest event in the log, as last read.")
	m.lag = gauge("ledger_relay_lag_events", "Events in the log not yet relayed (log position - relay position), while this relay holds the lock and relays; NaN otherwise (a standby, or a relay that cannot reach NATS: alert on sum(ledger_relay_lock_held) == 0 too).")
	// Unknown until a session resumes: 0 read as "nothing relayed", and a
	// standby's lag as the whole log.
	m.position.Set(math.NaN())
	m.lag.Set(math.NaN())
	m.lockHeld = gauge("ledger_relay_lock_held", "1 while this relay holds the relay lock and publishes, 0 while it waits or retries.")
	m.published = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_relay_published_events_total", Help: "Events published and acknowledged by JetStream.",
	})
	m.failures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_relay_failures_total", Help: "Relay sessions that ended in an error and were retried after a backoff.",
	})
	m.headFails = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ledger_relay_head_read_failures_total", Help: "Reads of the log's newest position that failed or took longer than 5 s (the lag gauges then keep their last values).",
	})
	m.reg.MustRegister(m.position, m.head, m.lag, m.lockHeld, m.published, m.failures, m.headFails,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// The recorders below accept a nil *Metrics, so the relay needs no checks.

func (m *Metrics) relayed(pos int64) {
	if m != nil {
		m.position.Set(float64(pos))
		m.published.Inc()
	}
}

func (m *Metrics) resumed(pos int64) {
	if m != nil {
		m.position.Set(float64(pos))
	}
}

// observeHead records the log's head, and the lag when this relay is
// relaying (holds the lock, has resumed); NaN when it is not.
func (m *Metrics) observeHead(head, relayed int64, relaying bool) {
	if m != nil {
		m.head.Set(float64(head))
		lag := math.NaN()
		if relaying {
			lag = float64(max(0, head-relayed))
		}
		m.lag.Set(lag)
	}
}

func (m *Metrics) failed() {
	if m != nil {
		m.failures.Inc()
	}
}

func (m *Metrics) headReadFailed() {
	if m != nil {
		m.headFails.Inc()
	}
}

func (m *Metrics) holding(held bool) {
	if m != nil {
		v := 0.0
		if held {
			v = 1
		}
		m.lockHeld.Set(v)
	}
}
