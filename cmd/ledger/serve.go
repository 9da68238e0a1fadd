package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/httpapi"
	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
	"github.com/interactionledger/ledger/projections"
	"github.com/interactionledger/ledger/web"
)

// serveFlags are the flags of `ledger serve`.
type serveFlags struct {
	listen, db, views, kinds          string
	tokensFile, jwtSecret, jwtKeyFile string
	jwtAudience, jwtIssuer            string
	corsOrigins                       string
	publicHistory, corsCredentials    bool
	consistency, drain, heartbeat     time.Duration
	readHeader                        time.Duration
	writeRate                         float64
	logFormat, logLevel               string
	cpuProfile                        string
	memoryRows                        int
	maxConns, maxStreams, maxInFlight int
}

func newServeFlags(e env) (*flag.FlagSet, *serveFlags) {
	fs := newFlagSet(e, "serve", "[flags]")
	d := httpapi.DefaultConfig()
	f := &serveFlags{}
	fs.StringVar(&f.listen, "listen", d.Listen, "address to listen on; a non-loopback address needs tokens")
	dbFlagVar(fs, &f.db)
	viewsFlagVar(fs, &f.views)
	kindsFlagVar(fs, &f.kinds)
	fs.StringVar(&f.tokensFile, "tokens-file", "", `service tokens, one "token scope[,scope]" per line (scopes read, write, admin)`)
	fs.StringVar(&f.jwtSecret, "jwt-secret", "", "HS256 secret of user JWTs (at least 32 bytes; prefer LEDGER_JWT_SECRET)")
	fs.StringVar(&f.jwtKeyFile, "jwt-public-key", "", "PEM file of the RS256 or EdDSA public key of user JWTs")
	fs.StringVar(&f.jwtAudience, "jwt-audience", "", "when set, a user JWT's aud must include this value")
	fs.StringVar(&f.jwtIssuer, "jwt-issuer", "", "when set, a user JWT's iss must equal this value")
	fs.StringVar(&f.corsOrigins, "cors-origins", "", "comma-separated exact origins (https://app.example) allowed to call the API from a browser; empty: CORS off")
	fs.BoolVar(&f.corsCredentials, "cors-credentials", false, "send Access-Control-Allow-Credentials to the --cors-origins (cookies, HTTP auth)")
	fs.BoolVar(&f.publicHistory, "public-history", false, "let the read scope and JWT users read /v1/events*")
	fs.DurationVar(&f.consistency, "consistency-timeout", d.ConsistencyTimeout, "how long a request waits for the read model before 503")
	fs.Float64Var(&f.writeRate, "write-rate", 0, "per-user writes per second (0: no limit)")
	fs.DurationVar(&f.drain, "drain-timeout", d.DrainTimeout, "how long shutdown waits for in-flight requests")
	fs.DurationVar(&f.heartbeat, "heartbeat", d.Heartbeat, "interval of the event stream's heartbeat comment")
	fs.DurationVar(&f.readHeader, "read-header-timeout", d.ReadHeaderTimeout, "how long a client may take to send a request's headers (cuts off slowloris clients)")
	fs.IntVar(&f.maxConns, "max-connections", defaultMaxConnections(), fmt.Sprintf("most open client connections; past it new ones wait in the listen backlog "+
		"and connections idle for a second are closed; its default is the open-file limit less %d kept for the log, the views file and the process", fileReserve))
	fs.IntVar(&f.maxStreams, "max-streams", 0, "most live event streams; past it a stream is answered 503 overloaded (0: half of --max-connections)")
	fs.IntVar(&f.maxInFlight, "max-in-flight", d.MaxInFlight, "most requests served at once, streams and probes aside; past it 503 overloaded at once (0: no bound)")
	fs.StringVar(&f.logFormat, "log-format", "text", "request log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "write a pprof CPU profile of the whole run to this file (written at shutdown)")
	fs.IntVar(&f.memoryRows, "memory-rows", projections.DefaultMemoryRows, "most rows (targets, users, liked or collected pairs, actors) of the in-memory copy that answers target reads and \"who liked it\" lists, ~63 bytes each; past it those reads go to SQLite; 0: no copy")
	return fs, f
}

// runServe wires the store, the projections and their pipeline, the
// command service and the HTTP server, and runs until ctx ends. Shutdown
// order: stop accepting and drain HTTP, close the pipeline, the
// projections, then the store.
func runServe(ctx context.Context, e env, args []string) error {
	fs, f := newServeFlags(e)
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	log, err := newLogger(e.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	if err := checkDB(f.db); err != nil { // before it listens
		return err
	}
	if err := refuseSealed(ctx, f.db); err != nil {
		return err
	}
	if err := viewsUsable(f.db, f.views); err != nil {
		return err
	}
	if err := notStoreFile("--cpuprofile", f.cpuProfile, f.db, f.views); err != nil {
		return err
	}
	stop, err := startCPUProfile(f.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	views := projections.Config{Path: viewsPath(f.db, f.views), Kinds: cfg.Kinds, MemoryRows: f.memoryRows,
		RebuildBehind: true}
	if f.memoryRows == 0 {
		views.MemoryRows = -1
	}
	// Opening the projections may build them from the whole log (a missing
	// views file, a new schema): that runs at the batch commands' target,
	// serving at the servers'.
	tuneGC(e, buildGCPercent)
	return serve(ctx, cfg, f.db, views, log, func() { tuneGC(e, serverGCPercent) })
}

// startCPUProfile starts profiling into path (nothing when path is empty)
// and returns the function that stops it and closes the file.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, usageErr("--cpuprofile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// fileReserve is how many of the process's open files --max-connections
// leaves to the node itself by default: ~30 in use when idle (the SQLite
// log's and views file's connections with their WAL and shm, the lock
// file, the listener, the runtime's), the default PostgreSQL pool (8),
// and room for the files SQLite opens as it goes (journals, checkpoints).
const fileReserve = 128

// defaultMaxConnections is --max-connections' default: the open-file
// limit (which Go raises to the hard limit at start) less fileReserve, or
// half the limit when that is more; at most maxDefaultConnections.
func defaultMaxConnections() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return maxDefaultConnections
	}
	n := min(lim.Cur, maxDefaultConnections)
	return int(max(n-min(n, fileReserve), n/2))
}

// maxDefaultConnections caps the default of an unlimited open-file limit.
const maxDefaultConnections = 1 << 20

// minHeartbeat is the shortest --heartbeat: a 1ns one (a unit slip) sent
// each stream's client heartbeats as fast as the server could write them,
// 4.5 MB a second to one curl.
const minHeartbeat = 10 * time.Millisecond

// config turns the flags into the server's config; every problem is a
// usage error, found before anything is opened.
func (f *serveFlags) config() (httpapi.Config, error) {
	cfg := httpapi.DefaultConfig()
	kinds, err := parseKinds(f.kinds)
	if err != nil {
		return cfg, err
	}
	auth, err := f.auth()
	if err != nil {
		return cfg, err
	}
	cfg.Listen, cfg.Kinds, cfg.Auth = f.listen, kinds, auth
	cfg.PublicHistory, cfg.WriteRate = f.publicHistory, f.writeRate
	cfg.ConsistencyTimeout, cfg.DrainTimeout, cfg.Heartbeat = f.consistency, f.drain, f.heartbeat
	cfg.ReadHeaderTimeout = f.readHeader
	cfg.MaxConnections, cfg.MaxStreams, cfg.MaxInFlight = f.maxConns, f.maxStreams, f.maxInFlight
	cfg.CORS = httpapi.CORSConfig{Origins: splitList(f.corsOrigins), Credentials: f.corsCredentials}
	if f.db == "" {
		return cfg, usageErr("--db is required")
	}
	if f.memoryRows < 0 {
		return cfg, usageErr("--memory-rows %d: must be 0 (no copy) or more", f.memoryRows)
	}
	if f.heartbeat > 0 && f.heartbeat < minHeartbeat {
		return cfg, usageErr("--heartbeat %v: must be >= %v (shorter only floods the event stream's clients)", f.heartbeat, minHeartbeat)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageErr("%v", err)
	}
	return cfg, nil
}

func (f *serveFlags) auth() (httpapi.AuthConfig, error) {
	var a httpapi.AuthConfig
	if f.tokensFile != "" {
		file, err := os.Open(f.tokensFile)
		if err != nil {
			return a, usageErr("--tokens-file: %v", err)
		}
		defer file.Close()
		if a.Tokens, err = httpapi.ParseTokens(file); err != nil {
			return a, usageErr("--tokens-file %s: %v", f.tokensFile, err)
		}
	}
	if f.jwtSecret != "" {
		a.JWTSecret = []byte(f.jwtSecret)
	}
	a.JWTAudience, a.JWTIssuer = f.jwtAudience, f.jwtIssuer
	if f.jwtKeyFile != "" {
		b, err := os.ReadFile(f.jwtKeyFile)
		if err != nil {
			return a, usageErr("--jwt-public-key: %v", err)
		}
		if a.JWTPublicKey, err = httpapi.ParsePublicKey(b); err != nil {
			return a, usageErr("--jwt-public-key %s: %v", f.jwtKeyFile, err)
		}
	}
	return a, nil
}

// splitList splits a comma-separated flag value, dropping blanks around
// and between the items.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErr("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		opts.ReplaceAttr = secondsForDurations
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageErr("--log-format %q: want text or json", format)
}

// secondsForDurations writes a duration in JSON logs as seconds (a
// number, as Prometheus and most log pipelines take them); slog's own
// form is an integer of nanoseconds, which nothing in the line names.
func secondsForDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
}

// serve opens everything, serves until ctx ends and closes in order. A
// node whose views file is missing builds it from the log first, then
// tails the log; opened is called once the projections are open, before
// serving.
func serve(ctx context.Context, cfg httpapi.Config, db string, views projections.Config, log *slog.Logger, opened func()) (err error) {
	metrics := httpapi.NewMetrics()
	health := &storeHealth{}
	clock := &clockWatch{log: log}
	opts := storeOptions{checked: true, onCommit: func(st commitStats) { // runServe checked db
		metrics.ObserveCommit(st.Appends, st.Events, st.Duration, st.Err != nil)
		health.observe(st)
		if st.Err == nil && !st.RecordedAt.IsZero() {
			metrics.ObserveClockBehind(st.ClockBehind)
			clock.observe(st.ClockBehind, st.RecordedAt)
		}
	}}
	if !postgres.IsURL(db) { // a PostgreSQL log has no WAL of this process's
		opts.onCheckpoint = metrics.Checkpoints("log")
	}
	// Listen first: an address already taken fails before anything is
	// opened or made (the log, the views file, their build).
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	serving := false
	defer func() {
		if !serving {
			_ = ln.Close()
		}
	}()
	opening := newOpeningViews(log, openingLogStatus(db))
	srv, err := httpapi.New(cfg, httpapi.Deps{
		Ledger: opening, Read: opening, Writable: health.writable, Metrics: metrics,
		Site: web.Demo(), Opening: opening.Opening,
	}, log)
	if err != nil {
		return err
	}
	serving = true // Serve closes ln from here on
	running := runServer(ctx, srv, ln)
	store, err := openLog(running, srv, db, opts, log)
	if err != nil {
		return startupErr(ctx, err, log)
	}
	defer closeAndJoin(&err, "close store", store.Close)
	health.store = store
	clock.atOpen(running.ctx, store)
	views.OnCheckpoint = metrics.Checkpoints("views")
	unlock, err := projections.LockServe(views.Path) // for the server's life
	if err != nil {
		return errors.Join(err, running.stopAndWait())
	}
	defer unlock()
	opening.Report("opening the views file")
	views.OnProgress = opening.progress
	set, err := projections.Open(running.ctx, views, store, log)
	if err != nil {
		if serr := running.stopAndWait(); serr != nil {
			return serr // it could not listen, which cut the opening short
		}
		return startupErr(ctx, otherSchemasViews(err, db), log)
	}
	defer closeAndJoin(&err, "close projections", set.Close)
	log.InfoContext(ctx, "serving", "db", dburl.Redact(db), "views", views.Path, "kinds", strings.Join(cfg.Kinds.Names(), ","),
		"log_head", cfg.StartPosition, "applied", set.Applied())
	warnUnconfiguredKinds(ctx, set, log)
	opened()
	unhook := set.OnApplied(func(ae projections.AppliedEvent) { srv.Publish(ae.Event, ae.Counts) })
	defer unhook()
	opening.open(set, domain.NewLedger(appendsWatched{store, set}, cfg.Kinds, domain.LedgerConfig{}, log))
	return runWithPipeline(ctx, store, set, running, log)
}

// openLog opens the log while srv answers as starting (its migrations may
// wait for another node's: tens of seconds of an index build), and gives
// it to srv with its head. On failure it stops srv first.
func openLog(running *runningServer, srv *httpapi.Server, db string, opts storeOptions, log *slog.Logger) (store *logStore, err error) {
	if store, err = openStore(running.ctx, db, opts, log); err != nil {
		return nil, errors.Join(err, running.stopAndWait())
	}
	head, err := store.LastPosition(running.ctx)
	if err == nil {
		err = srv.SetLog(store, head)
	}
	if err != nil {
		return nil, errors.Join(err, store.Close(), running.stopAndWait())
	}
	return store, nil
}

// openingLogStatus is what /readyz says while db's log opens.
func openingLogStatus(db string) string {
	if postgres.IsURL(db) {
		return "opening the log (applying its migrations, or waiting for another node that applies them)"
	}
	return "opening the log"
}

// runningServer is a server's Run in a goroutine of its own, begun before
// its log and views are open (see openingViews).
type runningServer struct {
	ctx  context.Context // ends when the server is told to stop, or ended
	stop context.CancelFunc
	done chan struct{} // closed when Run has returned
	err  error         // Run's result, once done
}

// runServer serves ln with srv until ctx ends or the server is stopped.
func runServer(ctx context.Context, srv *httpapi.Server, ln net.Listener) *runningServer {
	sctx, stop := context.WithCancel(ctx)
	r := &runningServer{ctx: sctx, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = srv.Serve(sctx, ln)
		stop()
	}()
	return r
}

// wait returns Run's result once it has returned.
func (r *runningServer) wait() error {
	<-r.done
	return r.err
}

// stopAndWait shuts the server down and returns Run's result.
func (r *runningServer) stopAndWait() error {
	r.stop()
	return r.wait()
}

// appendsWatched is the store a server's writes go through: each write
// (Ledger.Set, which decides through Decide) tells the projections the
// position its event took (Set.Appending), so that a log restored from an
// older copy under the server is seen at the first write into it. Until
// WatchHead's next look (up to a second), such a write answered 200 with
// the old log's counts and a viewer state without the write, as the state
// after it. A server appends nothing but through Set.
type appendsWatched struct {
	domain.CommandStore
	set *projections.Set
}

// Decide decides through the store (domain.DecideIn) and reports the
// position of the event it appended.
func (a appendsWatched) Decide(ctx context.Context, req domain.DecideRequest) (domain.Outcome, error) {
	appended := a.set.Appending()
	out, err := domain.DecideIn(ctx, a.CommandStore, req)
	if err == nil && out.Changed {
		appended(ctx, out.Position)
	}
	return out, err
}

// startupErr is what serve returns when opening the store or the
// projections failed with err: nothing when ctx has ended (a signal during
// startup, while a views file is built say, is a shutdown like one after
// it: logged, and exit 0), else err.
func startupErr(ctx context.Context, err error, log *slog.Logger) error {
	if ctx.Err() == nil || errors.Is(err, errUsage) {
		return err
	}
	log.InfoContext(ctx, "startup interrupted", "err", err)
	return nil
}

// runWithPipeline runs the projection router beside the running server.
// The router outlives the HTTP drain (in-flight writes wait for their event
// to be applied) and stops the server if it fails.
func runWithPipeline(ctx context.Context, store domain.EventStore, set *projections.Set, srv *runningServer, log *slog.Logger) error {
	p, err := bus.StartProjections(ctx, store, set, bus.SubscriberConfig{}, log)
	if err != nil {
		return errors.Join(err, srv.stopAndWait())
	}
	go func() {
		select {
		case <-p.Stopped(): // on its own: the server stops too
			srv.stop()
		case <-srv.done:
		}
	}()
	serr := srv.wait()
	rerr := p.Close()
	if serr == nil && ctx.Err() == nil && rerr == nil {
		rerr = errors.New("projection pipeline stopped")
	}
	return errors.Join(serr, rerr)
}

func closeAndJoin(err *error, what string, close func() error) {
	if cerr := close(); cerr != nil {
		*err = errors.Join(*err, fmt.Errorf("%s: %w", what, cerr))
	}
}

// storeHealth answers /readyz's "is the store writable": the store's own
// check passes (the SQLite file opens for writing, PostgreSQL answers), it
// answers reads, and no group commit failed in the last failureWindow (a
// failure does not mark the store unwritable for ever: with no traffic it
// could never prove the opposite).
type storeHealth struct {
	store writableStore

	mu       sync.Mutex
	failedAt time.Time
	failure  error
}

const failureWindow = 10 * time.Second

// writableStore is what storeHealth checks.
type writableStore interface {
	Writable(ctx context.Context) error
	LastPosition(ctx context.Context) (int64, error)
}

func (h *storeHealth) observe(st commitStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st.Err != nil {
		h.failedAt, h.failure = time.Now(), st.Err
	} else if st.Events > 0 {
		h.failure = nil
	}
}

func (h *storeHealth) writable(ctx context.Context) error {
	h.mu.Lock()
	failure, at := h.failure, h.failedAt
	h.mu.Unlock()
	if failure != nil && time.Since(at) < failureWindow {
		return fmt.Errorf("last commit failed: %w", failure)
	}
	if err := h.store.Writable(ctx); err != nil {
		return err
	}
	_, err := h.store.LastPosition(ctx)
	return err
}

// otherSchemasViews adds to the refusal of another log's views file, over
// a PostgreSQL log, what most often causes it: one views file for two
// databases or schemas, such as the default one, which is the same for
// every URL. It said only to rebuild it (which takes it from the other
// log's nodes) or, over an empty schema, to copy a SQLite log's -wal.
func otherSchemasViews(err error, db string) error {
	if !errors.Is(err, projections.ErrOtherLog) || !postgres.IsURL(db) {
		return err
	}
	return fmt.Errorf("%w (over PostgreSQL: each database and schema needs a views file of its own, and the "+
		"default, %s, is the same for every URL: give --views)", err, DefaultClusterViews)
}

// warnUnconfiguredKinds warns when the views hold counts of kinds that
// --kinds does not name (a kind removed, or renamed, since the log got
// events of it): no read shows them, and nothing else would say so.
func warnUnconfiguredKinds(ctx context.Context, set *projections.Set, log *slog.Logger) {
	kinds, err := set.UnconfiguredKinds(ctx)
	if err != nil || len(kinds) == 0 {
		return
	}
	log.WarnContext(ctx, "the log holds events of kinds not configured: their counts are kept, "+
		"and served again once --kinds names them (a kind renamed keeps its events under the old name)",
		"kinds", strings.Join(kinds, ", "))
}
