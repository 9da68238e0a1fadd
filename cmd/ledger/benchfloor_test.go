package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/cmd/ledger/internal/loadgen"
)

// TestBenchHTTPAgainstTheFloor drives a short workload at a started
// ledger and then at the floor, and gets both servers' figures.
func TestBenchHTTPAgainstTheFloor(t *testing.T) {
	out, _, err := runCLI(t, "bench", "http", "--floor", "--json", "--duration", "1s", "--rate", "400",
		"--clients", "8", "--hot-likes", "0", "--targets", "100", "--users", "100", "--feed-size", "5")
	if err != nil {
		t.Fatal(err)
	}
	var results []HTTPResult
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(results) != 2 || results[0].Server != "ledger" || results[1].Server != "floor" {
		t.Fatalf("results %+v, want the ledger's then the floor's", results)
	}
	for _, r := range results {
		if r.Report.Requests < 100 || len(r.Report.Errors) > 0 || r.CPUPerRequest <= 0 ||
			r.Report.Op(loadgen.OpWrite).Count == 0 || r.Report.Op(loadgen.OpFeed).Count == 0 {
			t.Errorf("%s: %d requests, errors %v, CPU per request %s, ops %+v", r.Server,
				r.Report.Requests, r.Report.Errors, r.CPUPerRequest, r.Report.Ops)
		}
	}
}

func TestPrintOverFloor(t *testing.T) {
	result := func(server string, cpu, p99 time.Duration) HTTPResult {
		return HTTPResult{Server: server, CPUPerRequest: cpu,
			Report: &loadgen.Report{Ops: []loadgen.OpReport{{Op: loadgen.OpTarget, P99: p99}}}}
	}
	var b strings.Builder
	results := []HTTPResult{result("ledger", 118*time.Microsecond, 24*time.Millisecond),
		result("floor", 59*time.Microsecond, 3*time.Millisecond)}
	if err := printHTTP(&b, false, results); err != nil {
		t.Fatal(err)
	}
	want := "\nledger over the floor: CPU per request 118µs against 59µs (+59µs, 2.00x); " +
		"read_target p99 24.00ms against 3.00ms (8.00x)\n"
	if !strings.HasSuffix(b.String(), want) {
		t.Errorf("the table ends\n%s\nwant it to end %q", b.String(), want)
	}
}
