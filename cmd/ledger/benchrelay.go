package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RelayRun is one run of bench relay.
type RelayRun struct {
	Events       int64   `json:"events"`
	AppendPerSec float64 `json:"append_events_per_s"`
	RelayPerSec  float64 `json:"relay_events_per_s"`
	Ratio        float64 `json:"relay_vs_append"`
}

// RelayResult is what bench relay prints: every run and the medians.
type RelayResult struct {
	Runs   []RelayRun `json:"runs"`
	Median RelayRun   `json:"median"`
}

func benchRelay(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench relay", "[--events N] [--runs R] [--nats URL]")
	n := fs.Int64("events", 100_000, "events in the log each run relays")
	runs := fs.Int("runs", 3, "runs; the medians are printed beside them")
	url := commandLineString(fs, "nats", "the `URL` of a NATS server with JetStream (each run uses a stream of its own and deletes it); "+
		"never read from LEDGER_NATS, the relay's (default "+defaultNATS+")")
	dir := fs.String("dir", "", "directory for the temporary databases (default: the system temp dir)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if *n < 1 || *runs < 1 {
		return usageErr("--events %d, --runs %d: both must be >= 1", *n, *runs)
	}
	if *url == "" {
		*url = defaultNATS
	}
	if err := (relaynats.Config{URL: *url}).Validate(); err != nil {
		return usageErr("--nats: %v", err)
	}
	if err := benchDir(*dir); err != nil {
		return err
	}
	if err := checkJetStream(ctx, *url); err != nil { // before minutes of generating a log
		return err
	}
	var res RelayResult
	for i := range *runs {
		run, err := relayRun(ctx, e, *url, *dir, *n)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "bench relay: run %d: append %.0f events/s, relay %.0f events/s\n", i+1, run.AppendPerSec, run.RelayPerSec)
		res.Runs = append(res.Runs, run)
	}
	res.Median = medianRun(res.Runs)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(res)
	}
	return printRelay(e, res)
}

// checkJetStream fails when no JetStream answers at url.
func checkJetStream(ctx context.Context, url string) error {
	nc, err := natsgo.Connect(url, natsgo.Timeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("NATS at %s: %w", relaynats.RedactURL(url), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = js.AccountInfo(actx)
		cancel()
	}
	if err != nil {
		return fmt.Errorf("JetStream at %s: %w", relaynats.RedactURL(url), err)
	}
	return nil
}

// relayStall is how long a bench run waits for the relay to make progress.
const relayStall = 30 * time.Second

// relayRun appends n events to a fresh log (timed: the log's own rate),
// then relays them into a fresh stream (timed from the relay's start until
// the stream acknowledged the last one).
func relayRun(ctx context.Context, e env, url, dir string, n int64) (RelayRun, error) {
	tmp, err := os.MkdirTemp(dir, "ledger-bench-relay-")
	if err != nil {
		return RelayRun{}, err
	}
	defer os.RemoveAll(tmp)
	db := filepath.Join(tmp, "bench.db")
	appendTime, err := timeGenerate(ctx, e, db, n)
	if err != nil {
		return RelayRun{}, err
	}
	relayTime, err := timeRelay(ctx, e, url, db, n)
	if err != nil {
		return RelayRun{}, err
	}
	run := RelayRun{Events: n, AppendPerSec: float64(n) / appendTime.Seconds(), RelayPerSec: float64(n) / relayTime.Seconds()}
	run.Ratio = run.RelayPerSec / run.AppendPerSec
	return run, nil
}

// timeGenerate appends n events in the Ledger's own shape (one event per
// append, many appends in flight, so group commit batches them).
func timeGenerate(ctx context.Context, e env, db string, n int64) (time.Duration, error) {
	store, err := sqlite.Open(ctx, sqlite.Config{Path: db}, cliLogger(e))
	if err != nil {
		return 0, err
	}
	defer store.Close()
	start := time.Now()
	if _, err := loggen.Generate(ctx, store, loggen.Config{Events: n, PerAppend: 1}); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// timeRelay relays the log at db into a stream of its own, which it
// deletes afterwards with its lock bucket.
func timeRelay(ctx context.Context, e env, url, db string, n int64) (time.Duration, error) {
	store, err := sqlite.Open(ctx, sqlite.Config{Path: db, ReadOnly: true}, cliLogger(e))
	if err != nil {
		return 0, err
	}
	defer store.Close()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "BENCH_" + hex.EncodeToString(suffix)
	cfg := relaynats.Config{URL: url, Stream: name, SubjectPrefix: "bench." + name, LockBucket: name + "_lock", LockTTL: 5 * time.Second}
	relay, err := relaynats.NewRelay(store, cfg, cliLogger(e))
	if err != nil {
		return 0, usageErr("%v", err)
	}
	defer dropStream(ctx, e, url, cfg)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- relay.Run(rctx) }()
	defer func() { cancel(); <-done }()
	last, moved := relay.Relayed(), time.Now()
	for relay.Relayed() < n {
		select {
		case err := <-done:
			done <- err
			return 0, fmt.Errorf("relay stopped at %d of %d: %v", relay.Relayed(), n, err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
		if got := relay.Relayed(); got != last {
			last, moved = got, time.Now()
		} else if time.Since(moved) > relayStall {
			return 0, fmt.Errorf("relay made no progress for %s at %d of %d events (is NATS at %s reachable?)",
				relayStall, got, n, relaynats.RedactURL(url))
		}
	}
	return time.Since(start), nil
}

// dropStream deletes a bench run's stream and lock bucket.
func dropStream(ctx context.Context, e env, url string, cfg relaynats.Config) {
	nc, err := natsgo.Connect(url)
	if err != nil {
		fmt.Fprintf(e.stderr, "bench relay: cannot delete stream %s: %v\n", cfg.Stream, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	errs := errors.Join(js.DeleteStream(ctx, cfg.Stream), js.DeleteKeyValue(ctx, cfg.LockBucket))
	if errs != nil {
		fmt.Fprintf(e.stderr, "bench relay: cleaning up stream %s: %v\n", cfg.Stream, errs)
	}
}

// medianRun is the median of each figure over the runs.
func medianRun(runs []RelayRun) RelayRun {
	pick := func(f func(RelayRun) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return RelayRun{
		Events:       runs[0].Events,
		AppendPerSec: pick(func(r RelayRun) float64 { return r.AppendPerSec }),
		RelayPerSec:  pick(func(r RelayRun) float64 { return r.RelayPerSec }),
		Ratio:        pick(func(r RelayRun) float64 { return r.Ratio }),
	}
}

func printRelay(e env, res RelayResult) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tevents\tappend events/s\trelay events/s\trelay / append\t")
	row := func(name string, r RelayRun) {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%.2f\t\n", name, r.Events, r.AppendPerSec, r.RelayPerSec, r.Ratio)
	}
	for i, r := range res.Runs {
		row(fmt.Sprint(i+1), r)
	}
	row("median", res.Median)
	return tw.Flush()
}
