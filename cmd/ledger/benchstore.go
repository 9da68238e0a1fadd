package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storebench"
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
	db := fs.String("db", "", "also measure this PostgreSQL database (a postgres:// URL; each run in a schema of its own, dropped after)")
	pgN := fs.Int("pg-events", 10_000, "appends per PostgreSQL run")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if *db != "" && !postgres.IsURL(*db) {
		return usageErr("--db %q: want a postgres:// or postgresql:// URL (the SQLite runs use --dir)", *db)
	}
	if *pgN < 1 {
		return usageErr("--pg-events %d: must be >= 1", *pgN)
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
	if *db != "" {
		rows, err := benchPostgres(ctx, e, *db, counts, *pgN)
		if err != nil {
			return err
		}
		results = append(results, rows...)
	}
	return printStore(e, *asJSON, results)
}

// benchPostgres measures, for each number of appenders, the PostgreSQL
// store (head row, group commit) and the alternative without a head row
// (bigserial + xid8, one append per transaction), each in a schema of its
// own that is dropped afterwards. Its rows compare the store with the
// alternative at the same concurrency.
func benchPostgres(ctx context.Context, e env, url string, counts []int, n int) ([]StoreResult, error) {
	var rows []StoreResult
	for _, a := range counts {
		fmt.Fprintf(e.stderr, "bench store: PostgreSQL, %d appenders...\n", a)
		alt, err := measureInSchema(ctx, url, func(schema string) (storebench.Result, error) {
			return postgres.MeasureSequenceInsert(ctx, url, schema, a, n)
		})
		if err != nil {
			return nil, err
		}
		r, err := measureInSchema(ctx, url, func(schema string) (storebench.Result, error) {
			return postgres.MeasureAppend(ctx, postgres.Config{URL: url, Schema: schema}, a, n)
		})
		if err != nil {
			return nil, err
		}
		rows = append(rows,
			pgRow(fmt.Sprintf("postgres bigserial+xid8, 1 per tx, %d appenders", a), alt, alt),
			pgRow(fmt.Sprintf("postgres ledger append, %d appenders", a), r, alt))
	}
	return rows, nil
}

// measureInSchema runs measure in a new schema and drops it afterwards.
func measureInSchema(ctx context.Context, url string, measure func(schema string) (storebench.Result, error)) (storebench.Result, error) {
	schema := fmt.Sprintf("ledger_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	res, err := measure(schema)
	return res, errors.Join(err, postgres.DropSchema(context.WithoutCancel(ctx), url, schema))
}

func pgRow(name string, r, alt storebench.Result) StoreResult {
	return StoreResult{Name: name, PerSecond: r.PerSecond, MeanBatch: r.MeanBatch(),
		VsOnePerTx: r.PerSecond / alt.PerSecond, Appends: r.Appends, ElapsedSecs: r.Elapsed.Seconds()}
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
	fmt.Fprintln(tw, "durable writes (SQLite synchronous=FULL, PostgreSQL synchronous_commit=on)\tper second\tper commit\tx one-per-tx\tx raw-1000\t")
	for _, r := range rows {
		raw := "-"
		if r.VsRawBatch > 0 {
			raw = fmt.Sprintf("%.2f", r.VsRawBatch)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%s\t\n", r.Name, r.PerSecond, r.MeanBatch, r.VsOnePerTx, raw)
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
