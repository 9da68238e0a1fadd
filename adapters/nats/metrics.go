package nats

import (
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
	m.lag = gauge("ledger_relay_lag_events", "Events in the log not yet relayed (log position - relay position).")
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

func (m *Metrics) observeHead(head, relayed int64) {
	if m != nil {
		m.head.Set(float64(head))
		m.lag.Set(float64(max(0, head-relayed)))
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
