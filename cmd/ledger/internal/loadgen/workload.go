package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Config describes the workload. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	URL        string        // base URL, e.g. http://127.0.0.1:8080
	Users      int           // distinct users
	Targets    int           // distinct targets (article/t<n>)
	Zipf       float64       // popularity skew of targets; > 1
	WriteRatio float64       // share of requests that are writes, 0..1
	Clients    int           // concurrent clients
	Duration   time.Duration // how long to run
	FeedSize   int           // targets per feed-page batch read
	Seed       uint64
	// Rate, when > 0, is the total requests per second offered, spread
	// evenly over the clients: each client sends on a fixed schedule and a
	// request's latency counts from when it was due, so time spent waiting
	// behind a slow answer is measured too (no coordinated omission). 0
	// is a closed loop: each client sends as soon as its last answer came.
	Rate float64
	// Toggle makes half of the writes undo one of the client's own earlier
	// likes (or collects) instead of unliking a random pair, which has
	// mostly never been liked: nearly every write then changes a stream,
	// as a site's writes do. The default mix (false) is the issue's, in
	// which about half the writes change nothing.
	Toggle bool
}

// DefaultConfig is the reference workload.
func DefaultConfig() Config {
	return Config{Users: 100_000, Targets: 10_000, Zipf: 1.1, WriteRatio: 0.2,
		Clients: 64, Duration: 10 * time.Second, FeedSize: 50, Seed: 1}
}

// Validate returns every problem with the workload, joined. The URL is
// checked by Run, since bench commands fill it in after starting a server.
func (c Config) Validate() error {
	var errs []error
	if c.Users < 1 || c.Targets < 1 || c.Clients < 1 || c.FeedSize < 1 {
		errs = append(errs, errors.New("users, targets, clients and feed size must be >= 1"))
	}
	if !(c.Zipf > 1) || math.IsInf(c.Zipf, 0) { // NaN passed "<= 1" and spun drawing targets
		errs = append(errs, fmt.Errorf("zipf %g: must be a finite number > 1", c.Zipf))
	}
	if !(c.WriteRatio >= 0 && c.WriteRatio <= 1) {
		errs = append(errs, fmt.Errorf("write ratio %g: must be within 0..1", c.WriteRatio))
	}
	if c.Duration <= 0 {
		errs = append(errs, errors.New("duration must be > 0"))
	}
	if !(c.Rate >= 0) || math.IsInf(c.Rate, 0) {
		errs = append(errs, fmt.Errorf("rate %g: must be a finite number >= 0", c.Rate))
	}
	return errors.Join(errs...)
}

// Operations of the mix. Reads split 50% single target, 30% feed page,
// 20% "who liked it" list.
const (
	OpWrite  = "write"
	OpTarget = "read_target"
	OpFeed   = "read_feed"
	OpList   = "read_list"
)

// HotTarget is the most popular target of the Zipf distribution.
const HotTarget = "article/t0"

type client struct {
	cfg   Config
	conn  *conn
	rng   *rand.Rand
	zipf  *rand.Zipf
	stats *Stats
	pace  *schedule       // nil in a closed loop
	on    []string        // with Config.Toggle: the paths this client turned on and has not turned off
	isOn  map[string]bool // the same paths, to add each once
}

// schedule is one client's send times under Config.Rate.
type schedule struct {
	next     time.Time     // when the next request is due
	interval time.Duration // between this client's requests
}

// pacing spreads the clients' first requests evenly over one interval so
// that the offered load is smooth rather than sent in bursts.
func pacing(cfg Config, i int, start time.Time) *schedule {
	interval := time.Duration(float64(cfg.Clients) / cfg.Rate * float64(time.Second))
	phase := interval * time.Duration(i) / time.Duration(cfg.Clients)
	return &schedule{next: start.Add(phase), interval: interval}
}

// due waits until the next request is due and returns when it was due,
// then moves the schedule on. A client that is behind sends at once.
func (s *schedule) due(ctx context.Context) time.Time {
	t := s.next
	s.next = t.Add(s.interval)
	if wait := time.Until(t); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
	return t
}

// Run drives the workload until cfg.Duration has passed or ctx ends, and
// returns what it measured.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, err := hostOf(cfg.URL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	all := make([]*Stats, cfg.Clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range cfg.Clients {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		c := &client{cfg: cfg, conn: newConn(host), rng: rng, stats: newStats(),
			zipf: rand.NewZipf(rng, cfg.Zipf, 1, uint64(cfg.Targets-1)), isOn: make(map[string]bool)}
		if cfg.Rate > 0 {
			c.pace = pacing(cfg, i, start)
		}
		all[i] = c.stats
		wg.Go(func() {
			defer c.conn.close()
			c.loop(ctx)
		})
	}
	wg.Wait()
	rep := report(all, time.Since(start))
	rep.Offered = cfg.Rate
	return rep, nil
}

// over reports whether the run has ended. Its deadline can pass before ctx
// is marked done; requests cut off in between are not measurements either.
func over(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// CheckURL returns an error when base is no plain-HTTP base URL, which Run
// would refuse once a bench has started its work.
func CheckURL(base string) error {
	_, err := hostOf(base)
	return err
}

// hostOf returns the host:port of a plain-HTTP base URL.
func hostOf(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || u.Scheme != "http" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("url %q: want a base URL such as http://127.0.0.1:8080", base)
	}
	if u.Port() == "" {
		return u.Host + ":80", nil
	}
	return u.Host, nil
}

func (c *client) loop(ctx context.Context) {
	for !over(ctx) {
		op, method, path := c.next()
		t0 := time.Now()
		if c.pace != nil {
			if t0 = c.pace.due(ctx); over(ctx) {
				return
			}
		}
		status, err := c.do(ctx, method, path)
		if over(ctx) {
			return // cut off by the end of the run: not a measurement
		}
		c.stats.record(op, time.Since(t0), status, err)
	}
}

func (c *client) next() (op, method, path string) {
	user := fmt.Sprintf("u%d", c.rng.IntN(c.cfg.Users))
	target := c.target()
	kind := "like"
	if c.rng.IntN(4) == 0 {
		kind = "collect"
	}
	if c.rng.Float64() < c.cfg.WriteRatio {
		method, path = c.write(fmt.Sprintf("/v1/targets/%s/%s/%s", target, kind, user))
		return OpWrite, method, path
	}
	switch r := c.rng.IntN(10); {
	case r < 5:
		return OpTarget, http.MethodGet, fmt.Sprintf("/v1/targets/%s?viewer=%s", target, user)
	case r < 8:
		return OpFeed, http.MethodGet, c.feed(user)
	default:
		return OpList, http.MethodGet, fmt.Sprintf("/v1/targets/%s/like?limit=50", target)
	}
}

// write returns a write's method and path: fresh turned on or off at
// random, or with Config.Toggle, fresh turned on or, half the time, one of
// the client's earlier turn-ons turned off.
func (c *client) write(fresh string) (method, path string) {
	off := c.rng.IntN(2) == 0
	switch {
	case !c.cfg.Toggle && off:
		return http.MethodDelete, fresh
	case !c.cfg.Toggle:
		return http.MethodPut, fresh
	case off && len(c.on) > 0:
		i := c.rng.IntN(len(c.on))
		path = c.on[i]
		c.on[i] = c.on[len(c.on)-1]
		c.on = c.on[:len(c.on)-1]
		delete(c.isOn, path)
		return http.MethodDelete, path
	}
	if !c.isOn[fresh] {
		c.isOn[fresh] = true
		c.on = append(c.on, fresh)
	}
	return http.MethodPut, fresh
}

func (c *client) target() string {
	return fmt.Sprintf("article/t%d", c.zipf.Uint64())
}

func (c *client) feed(user string) string {
	var b strings.Builder
	b.WriteString("/v1/targets?viewer=" + user)
	for range c.cfg.FeedSize {
		b.WriteString("&t=" + c.target())
	}
	return b.String()
}

func (c *client) do(ctx context.Context, method, path string) (int, error) {
	return c.conn.do(ctx, method, path)
}

// Stats collects one client's measurements; it is not safe for concurrent
// use (each client has its own, merged at the end).
type Stats struct {
	lat    map[string][]time.Duration
	status map[string]int
}

func newStats() *Stats {
	return &Stats{lat: map[string][]time.Duration{}, status: map[string]int{}}
}

func (s *Stats) record(op string, d time.Duration, status int, err error) {
	switch {
	case err != nil:
		s.status[op+" "+transportKind(err)]++
	case status >= 400:
		s.status[fmt.Sprintf("%s %d", op, status)]++
	default:
		s.lat[op] = append(s.lat[op], d)
	}
}

// transportKind names a request's error in the report: "transport error:
// EOF (fresh connection)" and the like.
func transportKind(err error) string {
	var te transportError
	if errors.As(err, &te) {
		return te.kind()
	}
	return "transport error: " + err.Error()
}

// OpReport is one operation's figures.
type OpReport struct {
	Op                 string
	Count              int
	PerSecond          float64
	P50, P95, P99, Max time.Duration
}

// Report is what a run measured.
type Report struct {
	Offered   float64 // Config.Rate: requests/s offered, 0 in a closed loop
	Elapsed   time.Duration
	Requests  int
	PerSecond float64
	Ops       []OpReport
	Errors    map[string]int
}

func report(all []*Stats, elapsed time.Duration) *Report {
	merged := newStats()
	for _, s := range all {
		for op, l := range s.lat {
			merged.lat[op] = append(merged.lat[op], l...)
		}
		for k, n := range s.status {
			merged.status[k] += n
		}
	}
	r := &Report{Elapsed: elapsed, Errors: merged.status}
	for _, op := range []string{OpWrite, OpTarget, OpFeed, OpList} {
		l := merged.lat[op]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		r.Ops = append(r.Ops, OpReport{Op: op, Count: len(l),
			PerSecond: float64(len(l)) / elapsed.Seconds(),
			P50:       pct(l, 50), P95: pct(l, 95), P99: pct(l, 99), Max: l[len(l)-1]})
		r.Requests += len(l)
	}
	for _, n := range merged.status {
		r.Requests += n
	}
	r.PerSecond = float64(r.Requests) / elapsed.Seconds()
	return r
}

// pct returns the p-th percentile of sorted durations (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	i := (len(sorted)*p + 99) / 100
	return sorted[max(0, min(i, len(sorted))-1)]
}

// Op returns the report of one operation (zero if it never ran).
func (r *Report) Op(name string) OpReport {
	for _, o := range r.Ops {
		if o.Op == name {
			return o
		}
	}
	return OpReport{Op: name}
}

// HotReads hammers the hottest target's counts (no viewer) with the given
// number of clients for d and reports the latency figures: the read that
// the legacy design pays for with COUNT(*) over every row of the target.
func HotReads(ctx context.Context, baseURL string, clients int, d time.Duration) (OpReport, error) {
	host, err := hostOf(baseURL)
	if err != nil {
		return OpReport{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	all := make([]*Stats, clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range clients {
		c := &client{cfg: Config{URL: baseURL}, conn: newConn(host), stats: newStats()}
		all[i] = c.stats
		wg.Go(func() {
			defer c.conn.close()
			for !over(ctx) {
				t0 := time.Now()
				status, err := c.do(ctx, http.MethodGet, "/v1/targets/"+HotTarget)
				if over(ctx) {
					return
				}
				c.stats.record(OpTarget, time.Since(t0), status, err)
			}
		})
	}
	wg.Wait()
	rep := report(all, time.Since(start))
	if len(rep.Errors) > 0 {
		return OpReport{}, fmt.Errorf("hot reads failed: %v", rep.Errors)
	}
	return rep.Op(OpTarget), nil
}
