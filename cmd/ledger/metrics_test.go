package main

import (
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricDoc is one metric as a README metrics table names it, or as a
// scrape serves it: its type, its labels (sorted) and its HELP text.
type metricDoc struct {
	kind, labels, help string
}

// TestMetricsTablesMatchMetrics keeps README's two metrics tables (the
// server's, the relay's) equal to what a fresh server's /metrics and the
// relay's serve: every ledger_ metric with its type, labels and HELP text,
// none missing, none extra. README named 12 of the server's 15 metrics, in
// passing, with neither types nor labels.
func TestMetricsTablesMatchMetrics(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), nil)
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	_, body := s.call(t, "GET", "/metrics", "")
	compareMetrics(t, "server", readmeMetrics(t, string(readme), "### Metrics"), servedMetrics(t, string(body)))

	rec := httptest.NewRecorder()
	relaynats.NewMetrics().Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	compareMetrics(t, "relay", readmeMetrics(t, string(readme), "Metrics (`--metrics-listen`)"), servedMetrics(t, rec.Body.String()))
}

// A fresh server shows each SQLite file's WAL checkpoint series at 0: a
// series that first appears at 1 hides that checkpoint (or failure) from
// increase() and rate(), so an alert on failed checkpoints missed the first.
func TestCheckpointSeriesStartAtZero(t *testing.T) {
	s := startServe(t, filepath.Join(t.TempDir(), "ledger.db"), nil)
	_, body := s.call(t, "GET", "/metrics", "")
	for _, file := range []string{"log", "views"} {
		for _, result := range []string{"ok", "failed"} {
			want := `ledger_wal_checkpoints_total{file="` + file + `",result="` + result + `"} 0`
			if !strings.Contains(string(body), want+"\n") {
				t.Errorf("a fresh server's /metrics lacks %s", want)
			}
		}
		if want := `ledger_wal_checkpoint_duration_seconds_count{file="` + file + `"} 0`; !strings.Contains(string(body), want+"\n") {
			t.Errorf("a fresh server's /metrics lacks %s", want)
		}
	}
}

func compareMetrics(t *testing.T, what string, documented, served map[string]metricDoc) {
	t.Helper()
	for name, d := range documented {
		if got, ok := served[name]; !ok {
			t.Errorf("%s: README's table names %s, which /metrics does not serve", what, name)
		} else if got != d {
			t.Errorf("%s: %s is %+v in README's table, %+v in /metrics", what, name, d, got)
		}
	}
	for name := range served {
		if _, ok := documented[name]; !ok {
			t.Errorf("%s: /metrics serves %s, which README's table does not name", what, name)
		}
	}
}

// servedMetrics parses a scrape's ledger_ metrics.
func servedMetrics(t *testing.T, text string) map[string]metricDoc {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, text)
	}
	out := map[string]metricDoc{}
	for name, f := range families {
		if !strings.HasPrefix(name, "ledger_") {
			continue
		}
		var labels []string
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if !slices.Contains(labels, l.GetName()) {
					labels = append(labels, l.GetName())
				}
			}
		}
		slices.Sort(labels)
		out[name] = metricDoc{strings.ToLower(dto.MetricType_name[int32(f.GetType())]), strings.Join(labels, ", "), f.GetHelp()}
	}
	return out
}

// readmeMetrics reads the first table after the line that starts with
// heading: rows "| `name` | type | `label`, `label` | HELP text |".
func readmeMetrics(t *testing.T, readme, heading string) map[string]metricDoc {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n"+heading)
	if !ok {
		t.Fatalf("README has no line starting with %q", heading)
	}
	out := map[string]metricDoc{}
	inTable := false
	for line := range strings.Lines(after) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "|") {
			if inTable {
				break
			}
			continue
		}
		inTable = true
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`ledger_") {
			continue // the header and its rule
		}
		unquote := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "`", "") }
		out[unquote(cells[0])] = metricDoc{strings.TrimSpace(cells[1]), unquote(cells[2]), strings.TrimSpace(cells[3])}
	}
	if len(out) == 0 {
		t.Fatalf("README has no metrics table after %q", heading)
	}
	return out
}

// A server says in its log which log and views file it serves, its
// password masked: a log pipeline gathering many nodes' lines could not
// tell which database a node's failures were about (the lines named the
// schema at most).
func TestServeLogsWhatItServes(t *testing.T) {
	u, err := url.Parse(pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t)))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "s3cret-pw") // trust authentication ignores it
	views := filepath.Join(t.TempDir(), "node.views")
	s := startServe(t, u.String(), nil, "--views", views)
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	_, metrics := s.call(t, "GET", "/metrics", "")
	_, ready := s.call(t, "GET", "/readyz", "")
	s.stop(t)
	logs := s.logs.String()
	var line string
	for l := range strings.Lines(logs) {
		if strings.Contains(l, `"msg":"serving"`) {
			line = l
		}
	}
	want := `"db":"postgres://` + u.User.Username() + ":xxxxx@" + u.Host + u.Path + "?"
	if !strings.Contains(line, want) || !strings.Contains(line, u.Query().Get("search_path")) || !strings.Contains(line, `"views":"`+views+`"`) {
		t.Errorf("the serving line %q, want %s…, its schema and views %s; logs:\n%s", line, want, views, logs)
	}
	for what, text := range map[string]string{"the log": logs, "/metrics": string(metrics), "/readyz": string(ready)} {
		if strings.Contains(text, "s3cret-pw") {
			t.Errorf("%s shows the database password", what)
		}
	}
}
