package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/interactionledger/ledger/adapters/sqlite"
)

// StoreResult is one row of bench store.
type StoreResult struct {
	Name        string  `json:"name"`
	PerSecond   float64 `json:"per_second"`
	MeanBatch   float64 `json:"mean_batch,omitempty"`
	VsOnePerTx  float64 `json:"vs_one_per_tx,omitempty"`
	VsRawBatch  float64 `json:"vs_raw_1000_per_tx,omitempty"`
	Appends     int     `json:"appends"`
	ElapsedSecs float64 `json:"elapsed_s"`
}

func benchStore(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench store", "[flags]")
	appenders := fs.String("appenders", "1,16,64,256", "comma-separated numbers of concurrent appenders")
	n := fs.Int("events", 100_000, "appends per group-commit run")
	rawN := fs.Int("raw-events", 100_000, "rows for the raw 1000-row-transaction ceiling")
	oneN := fs.Int("one-per-tx-events", 3_000, "rows for the one-row-per-transaction rate")
	dir := fs.String("dir", "", "directory for the temporary databases (default: the system temp dir)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	counts, err := parseCounts(*appenders)
	if err != nil {
		return err
	}
	if *n < 1 || *rawN < 1 || *oneN < 1 {
		return usageErr("--events, --raw-events and --one-per-tx-events must be >= 1")
	}
	tmp, err := os.MkdirTemp(*dir, "ledger-bench-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	sub := func(name string) string {
		d := filepath.Join(tmp, name)
		os.MkdirAll(d, 0o755)
		return d
	}
	one, err := sqlite.MeasureRawInsert(ctx, sub("one"), 1, *oneN)
	if err != nil {
		return err
	}
	raw, err := sqlite.MeasureRawInsert(ctx, sub("raw"), 1000, *rawN)
	if err != nil {
		return err
	}
	results := []StoreResult{storeRow("raw one row per transaction", one, one, raw),
		storeRow("raw 1000 rows per transaction", raw, one, raw)}
	for _, a := range counts {
		fmt.Fprintf(e.stderr, "bench store: %d appenders...\n", a)
		r, err := sqlite.MeasureAppend(ctx, sub(fmt.Sprintf("append-%d", a)), a, *n)
		if err != nil {
			return err
		}
		results = append(results, storeRow(fmt.Sprintf("ledger append, %d appenders", a), r, one, raw))
	}
	return printStore(e, *asJSON, results)
}

func storeRow(name string, r, one, raw sqlite.Result) StoreResult {
	return StoreResult{Name: name, PerSecond: r.PerSecond, MeanBatch: r.MeanBatch(),
		VsOnePerTx: r.PerSecond / one.PerSecond, VsRawBatch: r.PerSecond / raw.PerSecond,
		Appends: r.Appends, ElapsedSecs: r.Elapsed.Seconds()}
}

func printStore(e env, asJSON bool, rows []StoreResult) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "durable writes (synchronous=FULL)\tper second\tper commit\tx one-per-tx\tx raw-1000\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.2f\t\n", r.Name, r.PerSecond, r.MeanBatch, r.VsOnePerTx, r.VsRawBatch)
	}
	return tw.Flush()
}

// parseCounts parses "1,16,256"; a bad value is a usage error.
func parseCounts(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 {
			return nil, usageErr("--appenders %q: want positive whole numbers separated by commas", s)
		}
		out = append(out, n)
	}
	return out, nil
}
