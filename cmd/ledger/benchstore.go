package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storebench"
)

// StoreResult is one row of bench store: a rate over paired runs and,
// unless the row is a baseline, its ratio to the baseline run of the same
// pair, on a log of the same size.
type StoreResult struct {
	Name       string             `json:"name"`
	PerSecond  float64            `json:"per_second"` // median over the pairs
	Rate       storebench.Spread  `json:"per_second_spread"`
	MeanBatch  float64            `json:"mean_batch,omitempty"`
	Baseline   string             `json:"baseline,omitempty"`
	VsBaseline *storebench.Spread `json:"vs_baseline,omitempty"`
	Appends    int                `json:"appends"` // per run
	Prefill    int                `json:"prefill"` // events in the log before each run
	Pairs      int                `json:"pairs"`
}

// storeBench is what one bench store run measures.
type storeBench struct {
	dir                string
	pairs, prefill     int
	loneN, groupN, pgN int
	round              int // appends per turn of the lone pair
	groupRound         int // appends per turn of the concurrent appenders' pairs
	counts             []int
	runs               int // directories made so far
}

func benchStore(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench store", "[flags]")
	appenders := fs.String("appenders", "1,16,64,256", "comma-separated numbers of concurrent appenders")
	pairs := fs.Int("pairs", 3, "paired runs of each row and its baseline (the median and min-max are printed)")
	prefill := fs.Int("prefill", 20_000, "events in the log before every run, baseline and ledger alike")
	n := fs.Int("events", 50_000, "appends per run of the raw 1000-row transactions and of 2 or more appenders")
	oneN := fs.Int("one-per-tx-events", 3_000, "appends per run of one row per transaction and of 1 appender")
	round := fs.Int("round", 100, "the lone appender and one row per transaction take turns every this many appends")
	groupRound := fs.Int("group-round", 10_000, "2 or more appenders and the raw 1000-row transactions take turns every this many appends")
	dir := fs.String("dir", "", "directory for the temporary databases (default: the system temp dir)")
	db := commandLineString(fs, "db", "also measure this PostgreSQL database (a postgres:// URL; each run in a schema of its own, dropped after); never read from LEDGER_DB")
	pgN := fs.Int("pg-events", 10_000, "appends per PostgreSQL run")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if *db != "" && !postgres.IsURL(*db) {
		return usageErr("--db %q: want a postgres:// or postgresql:// URL (the SQLite runs use --dir)", *db)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"pairs", *pairs}, {"round", *round}, {"group-round", *groupRound}, {"events", *n}, {"one-per-tx-events", *oneN}, {"pg-events", *pgN}} {
		if f.v < 1 {
			return usageErr("--%s %d: must be >= 1", f.name, f.v)
		}
	}
	if *prefill < 0 {
		return usageErr("--prefill %d: must be >= 0", *prefill)
	}
	counts, err := parseCounts(*appenders)
	if err != nil {
		return err
	}
	if err := benchDir(*dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(*dir, "ledger-bench-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	b := &storeBench{dir: tmp, pairs: *pairs, prefill: *prefill, loneN: *oneN, groupN: *n, pgN: *pgN, round: *round,
		groupRound: *groupRound, counts: counts}
	results, err := b.sqliteRows(ctx, e)
	if err != nil {
		return err
	}
	if *db != "" {
		rows, err := b.postgresRows(ctx, e, *db)
		if err != nil {
			return err
		}
		results = append(results, rows...)
	}
	return printStore(e, *asJSON, results)
}

// sqliteRows measures the lone appender against one row per transaction,
// and the concurrent appenders against 1000-row transactions, each pair on
// logs of the same size.
func (b *storeBench) sqliteRows(ctx context.Context, e env) ([]StoreResult, error) {
	var rows []StoreResult
	var group []int
	for _, a := range b.counts {
		if a > 1 {
			group = append(group, a)
		}
	}
	if slices.Contains(b.counts, 1) {
		fmt.Fprintf(e.stderr, "bench store: 1 appender vs one row per transaction, %d pairs on %d-event logs...\n", b.pairs, b.prefill)
		p, err := b.measurePairs(ctx, sqlite.PairConfig{Appends: b.loneN, Round: b.round, Appenders: 1, PerTx: 1})
		if err != nil {
			return nil, err
		}
		rows = append(rows, pairedRows(rawOnePerTx, []string{"ledger append, 1 appenders"}, p, b.prefill)...)
	}
	for _, a := range group {
		fmt.Fprintf(e.stderr, "bench store: %d appenders vs 1000-row transactions, %d pairs on %d-event logs...\n", a, b.pairs, b.prefill)
		p, err := b.measurePairs(ctx, sqlite.PairConfig{Appends: b.groupN, Round: b.groupRound, Appenders: a, PerTx: 1000})
		if err != nil {
			return nil, err
		}
		rows = append(rows, pairedRows(fmt.Sprintf("%s, turns with %d appenders", raw1000PerTx, a),
			[]string{fmt.Sprintf("ledger append, %d appenders", a)}, p, b.prefill)...)
	}
	return rows, nil
}

const (
	rawOnePerTx  = "raw one row per transaction"
	raw1000PerTx = "raw 1000 rows per transaction"
)

// measurePairs runs b.pairs pairs of c (sqlite.MeasurePair) on logs
// pre-filled with b.prefill events: the store's appenders and the raw
// inserts take turns within each pair.
func (b *storeBench) measurePairs(ctx context.Context, c sqlite.PairConfig) (storebench.Paired, error) {
	c.Prefill = b.prefill
	p := storebench.Paired{Subjects: make([][]storebench.Result, 1)}
	for range b.pairs {
		raw, ledger, err := sqlite.MeasurePair(ctx, b.runDir(), c)
		if err != nil {
			return p, err
		}
		p.Base, p.Subjects[0] = append(p.Base, raw), append(p.Subjects[0], ledger)
	}
	return p, nil
}

// runDir returns a new directory for one run.
func (b *storeBench) runDir() string {
	b.runs++
	d := filepath.Join(b.dir, strconv.Itoa(b.runs))
	os.MkdirAll(d, 0o755)
	return d
}

// pairedRows makes the baseline's row and each subject's, with its ratio
// to the baseline pair by pair.
func pairedRows(base string, names []string, p storebench.Paired, prefill int) []StoreResult {
	rows := []StoreResult{resultRow(base, p.Base, prefill)}
	for j, name := range names {
		r := resultRow(name, p.Subjects[j], prefill)
		vs := storebench.Summarize(p.Ratios(j))
		r.Baseline, r.VsBaseline = base, &vs
		rows = append(rows, r)
	}
	return rows
}

func resultRow(name string, runs []storebench.Result, prefill int) StoreResult {
	rate := storebench.Summarize(storebench.Rates(runs))
	batches := make([]float64, len(runs))
	for i, r := range runs {
		batches[i] = r.MeanBatch()
	}
	return StoreResult{Name: name, PerSecond: rate.Median, Rate: rate,
		MeanBatch: storebench.Summarize(batches).Median, Appends: runs[0].Appends, Prefill: prefill, Pairs: len(runs)}
}

// postgresRows measures, for each number of appenders, the PostgreSQL
// store (head row, group commit) against the alternative without a head
// row (bigserial + xid8, one append per transaction), in paired runs, each
// in a schema of its own that is dropped afterwards: both start empty and
// write the same number of appends.
func (b *storeBench) postgresRows(ctx context.Context, e env, url string) ([]StoreResult, error) {
	var rows []StoreResult
	for _, a := range b.counts {
		fmt.Fprintf(e.stderr, "bench store: PostgreSQL, %d appenders, %d pairs...\n", a, b.pairs)
		alt := func() (storebench.Result, error) {
			return measureInSchema(ctx, url, func(schema string) (storebench.Result, error) {
				return postgres.MeasureSequenceInsert(ctx, url, schema, a, b.pgN)
			})
		}
		ledger := func() (storebench.Result, error) {
			return measureInSchema(ctx, url, func(schema string) (storebench.Result, error) {
				return postgres.MeasureAppend(ctx, postgres.Config{URL: url, Schema: schema}, a, b.pgN)
			})
		}
		p, err := storebench.Pair(b.pairs, alt, ledger)
		if err != nil {
			return nil, err
		}
		rows = append(rows, pairedRows(fmt.Sprintf("postgres bigserial+xid8, 1 per tx, %d appenders", a),
			[]string{fmt.Sprintf("postgres ledger append, %d appenders", a)}, p, 0)...)
	}
	return rows, nil
}

// measureInSchema runs measure in a new schema and drops it afterwards.
func measureInSchema(ctx context.Context, url string, measure func(schema string) (storebench.Result, error)) (storebench.Result, error) {
	schema := fmt.Sprintf("ledger_bench_%d_%d", os.Getpid(), time.Now().UnixNano())
	res, err := measure(schema)
	return res, errors.Join(err, postgres.DropSchema(context.WithoutCancel(ctx), url, schema))
}

func printStore(e env, asJSON bool, rows []StoreResult) error {
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	if len(rows) > 0 {
		fmt.Fprintf(e.stdout, "durable writes (SQLite synchronous=FULL, PostgreSQL synchronous_commit=on); "+
			"medians of %d paired runs, each row and its baseline on logs of the same size\n", rows[0].Pairs)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tlog before\tappends\tper second\tmin-max\tper commit\tx baseline\tmin-max\t")
	for _, r := range rows {
		vs, spread := "baseline", ""
		if r.VsBaseline != nil {
			vs = fmt.Sprintf("%.2f", r.VsBaseline.Median)
			spread = fmt.Sprintf("%.2f-%.2f", r.VsBaseline.Min, r.VsBaseline.Max)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f-%.0f\t%.1f\t%s\t%s\t\n", r.Name, r.Prefill, r.Appends,
			r.PerSecond, r.Rate.Min, r.Rate.Max, r.MeanBatch, vs, spread)
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
