package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/internal/dburl"
)

// RebuildResult is what bench rebuild prints.
type RebuildResult struct {
	Events       int64   `json:"events"`
	GenerateSecs float64 `json:"generate_s"`
	RebuildSecs  float64 `json:"rebuild_s"`
	PerSecond    float64 `json:"rebuild_events_per_s"`
	PeakRSSKiB   int64   `json:"rebuild_peak_rss_kib"`
}

func benchRebuild(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench rebuild", "--events N [flags]")
	n := fs.Int64("events", 1_000_000, "events to generate before the rebuild")
	dir := fs.String("dir", "", "directory for the temporary database (default: the system temp dir)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if *n < 1 {
		return usageErr("--events %d: must be >= 1", *n)
	}
	if err := benchDir(*dir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(*dir, "ledger-bench-rebuild-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	db := filepath.Join(tmp, "bench.db")
	res := RebuildResult{Events: *n}
	// Both halves run as children: a child's peak RSS (rusage) starts from
	// its parent's, so the generator, whose memory grows with the log, must
	// not be the rebuild's parent.
	gen, _, err := timeChild(ctx, e, "bench", "generate", "--db", db, "--events", strconv.FormatInt(*n, 10))
	if err != nil {
		return err
	}
	res.GenerateSecs = gen.Seconds()
	fmt.Fprintf(e.stderr, "bench rebuild: generated %d events in %.1fs; rebuilding in a child process\n", *n, res.GenerateSecs)
	elapsed, rss, err := timeChild(ctx, e, "rebuild", "--db", db)
	if err != nil {
		return err
	}
	res.RebuildSecs, res.PeakRSSKiB = elapsed.Seconds(), rss
	res.PerSecond = float64(*n) / elapsed.Seconds()
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	fmt.Fprintf(e.stdout, "rebuild of %d events: %.1fs, %.0f events/s, peak RSS %d MiB (generation took %.1fs)\n",
		res.Events, res.RebuildSecs, res.PerSecond, res.PeakRSSKiB/1024, res.GenerateSecs)
	return nil
}

// benchGenerate writes the bench log: bench rebuild runs it as a child.
func benchGenerate(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench generate", "--db FILE|URL --events N")
	db := commandLineString(fs, "db", "the new or empty log to write: a SQLite file (created) or a postgres:// URL; required, never read from LEDGER_DB (synthetic events never leave a log)")
	n := fs.Int64("events", 1_000_000, "events to generate")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if *db == "" {
		return usageErr("bench generate needs --db FILE|URL (never read from LEDGER_DB)")
	}
	if *n < 1 {
		return usageErr("--events %d: must be >= 1", *n)
	}
	return generate(ctx, e, *db, *n)
}

// generate writes n synthetic events into the new or empty log db names, a
// SQLite file or a PostgreSQL URL (openStore); it refuses one with events.
func generate(ctx context.Context, e env, db string, n int64) error {
	store, err := openStore(ctx, db, storeOptions{}, cliLogger(e))
	if err != nil {
		return err
	}
	defer store.Close()
	if err := emptyLog(ctx, store, db); err != nil {
		return err
	}
	start := time.Now()
	if _, err := loggen.Generate(ctx, store, loggen.Config{Events: n, Progress: generateProgress(e, n)}); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "bench generate: wrote %d events in %.1fs\n", n, time.Since(start).Seconds())
	return nil
}

// generateProgress reports a generation's progress at most every 5 s. The
// last report can be far from the end, so generate says when it is done
// (its only line was "bench rebuild: generated 65536/250000 events", exit 0).
func generateProgress(e env, n int64) func(done int64) {
	next := time.Now()
	return func(done int64) {
		if time.Now().After(next) {
			next = time.Now().Add(5 * time.Second)
			fmt.Fprintf(e.stderr, "bench generate: generated %d/%d events\n", done, n)
		}
	}
}

// emptyLog refuses a log that holds events: the synthetic events would be
// mixed into them.
func emptyLog(ctx context.Context, store *logStore, db string) error {
	last, err := store.LastPosition(ctx)
	if err != nil {
		return err
	}
	if last > 0 {
		return usageErr("--db %s holds %d events: bench generate writes into a new or empty log only", dburl.Redact(db), last)
	}
	return nil
}

// childEnv is the environment of a process a bench starts: this one's
// without its LEDGER_* variables, which were exported for the node (a
// LEDGER_VIEWS would make the child rebuild or serve the node's views file
// for the bench's synthetic log, a LEDGER_TOKENS_FILE would answer the
// load 401), and with LEDGER_CHILD=1. A child's settings are all on its
// command line.
func childEnv() []string {
	vars := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "LEDGER_") })
	return append(vars, "LEDGER_CHILD=1")
}

// timeChild runs this binary with args as a child process and returns its
// wall time and peak resident memory (its own, from the kernel's rusage).
func timeChild(ctx context.Context, e env, args ...string) (time.Duration, int64, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = childEnv()
	cmd.Stderr = e.stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("ledger %v: %w", args, err)
	}
	elapsed := time.Since(start)
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return elapsed, rss, nil
}
