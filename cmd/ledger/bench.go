package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/interactionledger/ledger/cmd/ledger/internal/baseline"
	"github.com/interactionledger/ledger/cmd/ledger/internal/floor"
	"github.com/interactionledger/ledger/cmd/ledger/internal/loadgen"
)

// benchCommands are the subcommands of bench; generate, serve-baseline and
// serve-floor are hidden, the children that bench rebuild, bench baseline
// and bench http --floor start.
var benchCommands = map[string]func(ctx context.Context, e env, args []string) error{
	"store":          benchStore,
	"http":           benchHTTP,
	"baseline":       benchBaseline,
	"rebuild":        benchRebuild,
	"relay":          benchRelay,
	"generate":       benchGenerate,
	"serve-baseline": serveBaseline,
	"serve-floor":    serveFloor,
}

func runBench(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stdout, "Usage: ledger bench store|http|baseline|rebuild|relay|generate [flags]   (each with --help)")
		if len(args) == 0 {
			return usageErr("bench needs a subcommand")
		}
		return nil
	}
	run, ok := benchCommands[args[0]]
	if !ok {
		return usageErr("unknown bench %q: want store, http, baseline, rebuild, relay or generate", args[0])
	}
	return run(ctx, e, args[1:])
}

// workloadFlags adds the workload flags shared by bench http and baseline.
func workloadFlags(fs *flag.FlagSet) *loadgen.Config {
	c := loadgen.DefaultConfig()
	fs.IntVar(&c.Users, "users", c.Users, "distinct users")
	fs.IntVar(&c.Targets, "targets", c.Targets, "distinct targets")
	fs.Float64Var(&c.Zipf, "zipf", c.Zipf, "Zipf skew of target popularity (> 1)")
	fs.Float64Var(&c.WriteRatio, "write-ratio", c.WriteRatio, "share of requests that are writes")
	fs.BoolVar(&c.Toggle, "toggle", false, "half the writes undo one of the client's own earlier likes instead of unliking a random pair (which mostly changes nothing): nearly every write changes a stream")
	fs.IntVar(&c.Clients, "clients", c.Clients, "concurrent clients")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to drive the load")
	fs.IntVar(&c.FeedSize, "feed-size", c.FeedSize, "targets per feed-page batch read")
	fs.Float64Var(&c.Rate, "rate", 0, "offer this many requests/s in all, each client on a fixed schedule, latency counted from when a request was due (0: closed loop, each client sends when its last answer came)")
	return &c
}

// hotLikesFlag adds --hot-likes.
func hotLikesFlag(fs *flag.FlagSet) *int {
	return fs.Int("hot-likes", 100_000, "before a started server runs, this many distinct users like the hot target "+loadgen.HotTarget+" in its store (a popular target's history)")
}

// HTTPResult is one server's figures under the workload.
type HTTPResult struct {
	Server     string          `json:"server"`
	Report     *loadgen.Report `json:"report"`
	HotReadP99 time.Duration   `json:"hot_read_p99_ns"`
	HotReads   float64         `json:"hot_reads_per_s"`
	PeakRSSKiB int64           `json:"peak_rss_kib,omitempty"`
	// CPUPerRequest is the server's CPU time (user + system) over the
	// workload divided by its requests: steadier than throughput on a
	// shared machine, and free of the load generator's share.
	CPUPerRequest time.Duration `json:"server_cpu_per_request_ns,omitempty"`
	LagP99        time.Duration `json:"projection_lag_p99_ns,omitempty"`
}

func benchHTTP(ctx context.Context, e env, args []string) error {
	var url string
	var withFloor bool
	w, err := parseWorkload(e, "bench http", args, func(fs *flag.FlagSet) {
		fs.StringVar(&url, "url", "", "drive a running server instead of starting one on a temp file")
		fs.BoolVar(&withFloor, "floor", false, "then drive the same workload at net/http answering it with "+
			"fixed bodies of the ledger's shapes (no store), the floor of any Go server on these cores, and "+
			"print the ledger's figures against it")
	})
	if err != nil {
		return helpOK(err)
	}
	if withFloor && url != "" {
		return usageErr("--floor starts both servers itself: it cannot drive --url %q", url)
	}
	if url != "" && loadgen.CheckURL(url) != nil {
		return usageErr("--url %q: want a base URL such as http://127.0.0.1:8080", url)
	}
	servers := []string{"ledger"}
	if withFloor {
		servers = append(servers, "floor")
	}
	return measureServers(ctx, e, url, w, servers...)
}

// measureServers measures each server in turn with the same workload (url,
// when set, is the one running server) and prints their results.
func measureServers(ctx context.Context, e env, url string, w workload, servers ...string) error {
	var results []HTTPResult
	for _, server := range servers {
		res, err := measureServer(ctx, e, server, url, w)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	return printHTTP(e.stdout, w.asJSON, results)
}

// workload is what bench http and bench baseline share from their flags.
type workload struct {
	cfg        loadgen.Config
	hotLikes   int
	asJSON     bool
	cpuProfile string // of the started ledger server
}

// parseWorkload parses the workload flags (and any extra ones); bad values
// are usage errors, --help is flag.ErrHelp (see helpOK).
func parseWorkload(e env, name string, args []string, extra func(*flag.FlagSet)) (workload, error) {
	fs := newFlagSet(e, name, "[flags]")
	cfg := workloadFlags(fs)
	hot := hotLikesFlag(fs)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	profile := fs.String("cpuprofile", "", "write a pprof CPU profile of the started ledger server to this file")
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, e, args); err != nil {
		return workload{}, err
	}
	if err := cfg.Validate(); err != nil {
		return workload{}, usageErr("%v", err)
	}
	if *hot < 0 {
		return workload{}, usageErr("--hot-likes %d: must be >= 0", *hot)
	}
	if err := outNamesAFile("--cpuprofile", *profile); err != nil {
		return workload{}, err // the started server would refuse it after the seeding, and be waited for 30 s
	}
	return workload{cfg: *cfg, hotLikes: *hot, asJSON: *asJSON, cpuProfile: *profile}, nil
}

func benchBaseline(ctx context.Context, e env, args []string) error {
	w, err := parseWorkload(e, "bench baseline", args, nil)
	if err != nil {
		return helpOK(err)
	}
	return measureServers(ctx, e, "", w, "ledger", "baseline")
}

// measureServer starts the named server (unless url is given), drives the
// workload, then measures hot-target count reads on the loaded data.
func measureServer(ctx context.Context, e env, server, url string, w workload) (HTTPResult, error) {
	tuneGC(e, serverGCPercent) // the load generator shares the cores: keep its collector cheap too
	res := HTTPResult{Server: server}
	cfg := w.cfg
	var proc *serverProc
	if url == "" {
		var err error
		if proc, err = startServer(ctx, e, server, w); err != nil {
			return res, err
		}
		defer proc.stop()
		url = proc.url
	} else if err := ledgerAnswers(ctx, url); err != nil {
		return res, err
	}
	cfg.URL = url
	fmt.Fprintf(e.stderr, "bench: driving %s at %s for %s with %d clients%s\n", server, url, cfg.Duration, cfg.Clients, offered(cfg.Rate))
	cpu0 := proc.cpuTime()
	rep, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return res, err
	}
	res.Report = rep
	if cpu := proc.cpuTime() - cpu0; cpu > 0 && rep.Requests > 0 {
		res.CPUPerRequest = cpu / time.Duration(rep.Requests)
	}
	hot, err := loadgen.HotReads(ctx, url, min(cfg.Clients, 16), 2*time.Second)
	if err != nil {
		return res, err
	}
	res.HotReadP99, res.HotReads = hot.P99, hot.PerSecond
	if proc != nil {
		res.LagP99 = scrapeLagP99(ctx, url)
		res.PeakRSSKiB = proc.peakRSS()
	}
	return res, nil
}

func printHTTP(w io.Writer, asJSON bool, results []HTTPResult) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\top\tcount\treq/s\tp50\tp95\tp99\tmax\t")
	for _, r := range results {
		for _, o := range r.Report.Ops {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t\n", r.Server, o.Op, o.Count, o.PerSecond,
				ms(o.P50), ms(o.P95), ms(o.P99), ms(o.Max))
		}
		fmt.Fprintf(tw, "%s\tall\t%d\t%.0f\t\t\t\t\t\n", r.Server, r.Report.Requests, r.Report.PerSecond)
		if r.Report.Offered > 0 {
			fmt.Fprintf(tw, "%s\toffered\t\t%.0f\t\t\t\t\t\n", r.Server, r.Report.Offered)
		}
		fmt.Fprintf(tw, "%s\thot_read\t\t%.0f\t\t\t%s\t\t\n", r.Server, r.HotReads, ms(r.HotReadP99))
	}
	tw.Flush()
	for _, r := range results {
		fmt.Fprintf(w, "%s: peak RSS %d MiB, CPU %s per request, projection lag p99 %s, errors %v\n",
			r.Server, r.PeakRSSKiB/1024, r.CPUPerRequest.Round(time.Microsecond), ms(r.LagP99), r.Report.Errors)
	}
	if len(results) != 2 {
		return nil
	}
	a, b := results[0], results[1]
	switch b.Server {
	case "floor":
		printOverFloor(w, a, b)
	default:
		fmt.Fprintf(w, "ratio %s/%s: throughput %.2fx, hot-target reads %.2fx (p99 %.2fx faster), server CPU per request %.2fx less\n",
			a.Server, b.Server, a.Report.PerSecond/b.Report.PerSecond, a.HotReads/b.HotReads,
			float64(b.HotReadP99)/float64(max(a.HotReadP99, 1)),
			float64(b.CPUPerRequest)/float64(max(a.CPUPerRequest, 1)))
	}
	return nil
}

// printOverFloor prints the ledger's CPU per request and single-target
// read p99 against the floor's, measured in the same run.
func printOverFloor(w io.Writer, ledger, bare HTTPResult) {
	cpu, fcpu := ledger.CPUPerRequest, bare.CPUPerRequest
	p99, fp99 := ledger.Report.Op(loadgen.OpTarget).P99, bare.Report.Op(loadgen.OpTarget).P99
	fmt.Fprintf(w, "ledger over the floor: CPU per request %s against %s (+%s, %.2fx); read_target p99 %s against %s (%.2fx)\n",
		cpu.Round(time.Microsecond), fcpu.Round(time.Microsecond), (cpu - fcpu).Round(time.Microsecond),
		float64(cpu)/float64(max(fcpu, 1)), ms(p99), ms(fp99), float64(p99)/float64(max(fp99, 1)))
}

// offered describes an open-loop rate for the progress line.
func offered(rate float64) string {
	if rate == 0 {
		return " (closed loop)"
	}
	return fmt.Sprintf(" offering %.0f req/s", rate)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// benchDir refuses a --dir of bench store, rebuild or relay that is no
// directory: its runs' temporary directories are made in it, and a
// missing one failed with "stat DIR: no such file or directory", exit 1,
// naming no flag (bench relay after its NATS check).
func benchDir(dir string) error {
	if dir == "" {
		return nil // the system's temporary directory
	}
	info, err := os.Stat(dir)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return usageErr("--dir %s: %v", dir, pe.Err)
	}
	if err == nil && !info.IsDir() {
		return usageErr("--dir %s: not a directory", dir)
	}
	return nil
}

// serverProc is a server started as a child process of this binary, so
// that its memory is measured alone.
type serverProc struct {
	cmd *exec.Cmd
	url string
	dir string
}

func startServer(ctx context.Context, e env, server string, w workload) (_ *serverProc, err error) {
	dir, err := os.MkdirTemp("", "ledger-bench-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir) // a seeding cut short left it behind
		}
	}()
	if err := seedHot(ctx, server, filepath.Join(dir, "bench.db"), w.hotLikes); err != nil {
		return nil, fmt.Errorf("seed %s: %w", server, err)
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	db := filepath.Join(dir, "bench.db")
	args := []string{"serve", "--listen", addr, "--db", db, "--log-format", "json", "--log-level", "error"}
	if w.cpuProfile != "" {
		args = append(args, "--cpuprofile", w.cpuProfile)
	}
	switch server {
	case "baseline":
		args = []string{"bench", "serve-baseline", "--listen", addr, "--db", db}
	case "floor":
		args = []string{"bench", "serve-floor", "--listen", addr}
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = e.stderr
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{cmd: cmd, url: "http://" + addr, dir: dir}
	if err := waitReady(ctx, p.url+"/readyz", 30*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s did not become ready: %w", server, err)
	}
	return p, nil
}

// cpuTime is the CPU time (user + system) the child has used so far, 0
// when unknown (no child, not Linux).
func (p *serverProc) cpuTime() time.Duration {
	if p == nil {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s.
	_, rest, ok := strings.Cut(string(b), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// peakRSS reads the child's high-water mark of resident memory (Linux).
func (p *serverProc) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func (p *serverProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(p.dir)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// ledgerAnswers checks that a ledger answers at url (its /readyz) before a
// bench drives it: one that did not was driven for the whole --duration,
// then the bench failed with only "hot reads failed: map[transport
// error:86694]".
func ledgerAnswers(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/readyz", nil)
	if err != nil {
		return fmt.Errorf("--url %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("--url %s: no ledger answers: %w", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("--url %s: GET /readyz answered %s", url, resp.Status)
	}
	return nil
}

// waitReady polls a readiness URL while a child process starts; this is
// set-up of a benchmark, not a hot path.
func waitReady(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.Join(errors.New("timed out"), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serveBaseline runs the legacy-design server; bench baseline starts it as
// a child process.
func serveBaseline(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench serve-baseline", "[flags]")
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	db := dbFlag(fs)
	kinds := kindsFlag(fs)
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	set, err := parseKinds(*kinds)
	if err != nil {
		return err
	}
	tuneGC(e, serverGCPercent)
	s, err := baseline.Open(ctx, *db, set)
	if err != nil {
		return err
	}
	defer s.Close()
	return serveBench(ctx, *listen, s)
}

// serveFloor runs the floor server; bench http --floor starts it as a
// child process.
func serveFloor(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "bench serve-floor", "[flags]")
	listen := fs.String("listen", "127.0.0.1:8082", "address to listen on")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	tuneGC(e, serverGCPercent)
	return serveBench(ctx, *listen, floor.New())
}

// serveBench serves h on listen until ctx ends, then shuts down.
func serveBench(ctx context.Context, listen string, h http.Handler) error {
	srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
