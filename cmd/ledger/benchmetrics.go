package main

import (
	"context"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// lagMetric is the server's histogram of projection lag (commit to
// applied), read from /metrics after a bench run.
const lagMetric = "ledger_projection_lag_seconds"

// scrapeLagP99 estimates the p99 of the server's projection-lag histogram
// (upper bound of the bucket holding the 99th percentile); 0 when the
// server exposes no such histogram.
func scrapeLagP99(ctx context.Context, baseURL string) time.Duration {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return 0
	}
	fam, ok := families[lagMetric]
	if !ok {
		return 0
	}
	cumulative := map[float64]uint64{} // summed over label sets
	var total uint64
	for _, m := range fam.GetMetric() {
		h := m.GetHistogram()
		total += h.GetSampleCount()
		for _, b := range h.GetBucket() {
			cumulative[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	bounds := make([]float64, 0, len(cumulative))
	for le := range cumulative {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	need := uint64(math.Ceil(0.99 * float64(total)))
	for _, le := range bounds {
		if total > 0 && cumulative[le] >= need && !math.IsInf(le, 1) {
			return time.Duration(le * float64(time.Second))
		}
	}
	return 0
}
