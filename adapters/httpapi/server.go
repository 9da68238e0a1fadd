package httpapi

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
	"github.com/rs/cors"
)

// Ledger is the command side the server writes through (domain.Ledger).
type Ledger interface {
	// Set turns a kind on or off; see domain.Ledger.Set for its errors.
	Set(ctx context.Context, req domain.SetRequest) (domain.Outcome, error)
	// Recorded returns the first outcome of a retried request (same
	// idempotency key) without appending; see domain.Ledger.Recorded.
	Recorded(ctx context.Context, req domain.SetRequest) (domain.Outcome, bool, error)
}

// Log is the part of the event store the server reads history from and
// checks for readiness.
type Log interface {
	// ReadEvents yields the events matching f in position order.
	ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error]
	// LastPosition returns the position of the newest committed event.
	LastPosition(ctx context.Context) (int64, error)
	// LogID names the log (domain.Identified): answers carry it as
	// Ledger-Log, and a request naming another log is refused.
	LogID() string
}

// ReadModel is the query side: the projections' reads and their progress.
// Bad cursors come back as errors wrapping domain.ErrInvalidInput.
type ReadModel interface {
	// Target returns one target's counts, and viewer's state when viewer
	// is not nil; an unknown target has zero counts.
	Target(ctx context.Context, t domain.Target, viewer *domain.UserID) (projections.TargetView, error)
	// Targets is Target for up to 200 targets, in request order.
	Targets(ctx context.Context, ts []domain.Target, viewer *domain.UserID) ([]projections.TargetView, error)
	// Actors pages who turned k on for t, newest first.
	Actors(ctx context.Context, t domain.Target, k domain.Kind, limit int, cursor string) (projections.Page[projections.Actor], error)
	// Collection pages what u turned k on for, newest first, optionally
	// only targets of targetType.
	Collection(ctx context.Context, u domain.UserID, k domain.Kind, targetType string, limit int, cursor string) (projections.Page[projections.Item], error)
	// Applied is the position every projection has applied.
	Applied() int64
	// WaitFor returns when Applied() >= pos, or with ctx's error.
	WaitFor(ctx context.Context, pos int64) error
	// Err is non-nil when a projection failed.
	Err() error
	// Stopped is non-nil when the read model stopped until a restart
	// (projections.Set.Stopped): the error its reads answer.
	Stopped() error
}

// Deps are the components a Server serves.
type Deps struct {
	Ledger Ledger
	Log    Log
	Read   ReadModel
	// Writable reports whether the store can accept writes right now
	// (/readyz); nil errors mean yes. The stores have one each:
	// sqlite.EventStore.Writable and postgres.EventStore.Ping.
	Writable func(ctx context.Context) error
	// Metrics, when set, are the collectors to serve (NewMetrics; a
	// Metrics serves one Server); nil creates them.
	Metrics *Metrics
	// Site, when set, is a built single-page front end served at / (its
	// index.html) and /assets/ (its other files); nil serves no page.
	Site fs.FS
	// Opening, when set, is the read model's opening, which the server
	// answers beside until it is done (see Opening); nil: Read is open.
	// With an Opening, Log may be nil: the log is still opening too, and
	// comes through SetLog before the Opening is done.
	Opening *Opening
}

func (d Deps) validate() error {
	var errs []error
	if d.Ledger == nil {
		errs = append(errs, errors.New("deps: Ledger is required"))
	}
	if d.Log == nil && d.Opening == nil {
		errs = append(errs, errors.New("deps: Log is required (it may come later, through SetLog, only with an Opening)"))
	} else if d.Log != nil {
		errs = append(errs, validLog(d.Log))
	}
	if d.Read == nil {
		errs = append(errs, errors.New("deps: Read is required"))
	}
	if d.Writable == nil {
		errs = append(errs, errors.New("deps: Writable is required"))
	}
	return invalidConfig(errors.Join(errs...))
}

// Server serves the v1 API. Build it with New, run it with Run (or mount
// Handler yourself). It is safe for concurrent use.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	auth    *authenticator
	limits  *userLimits
	metrics *Metrics
	hub     *hub
	// replays admits the streams' reads of the log for their replay.
	replays *gate
	// streams and inFlight count the live streams and the other requests
	// being served against their bounds (admit).
	streams, inFlight gauge
	cors              *cors.Cors // nil when CORS is off
	mux               *http.ServeMux
	handler           http.Handler
	routes            []route
	// queries maps a route's pattern ("GET /v1/targets", a request's
	// Pattern) to the query parameters it takes.
	queries map[string][]string
	// logID is the log's identity, sent as Ledger-Log; it, etagTag,
	// deps.Log and cfg.StartPosition are set once, by New or SetLog, and
	// logSet is true from then on.
	logID   string
	etagTag string
	logSet  atomic.Bool
	// kindOrder is the configured kind names, sorted: the key order of
	// the JSON maps of counts and viewer flags (appendMap).
	kindOrder []string

	closing  atomic.Bool
	stop     chan struct{} // closed when shutdown starts: ends SSE streams
	stopOnce sync.Once
}

// New returns a server for cfg and deps. A nil logger discards. It
// returns cfg.Validate's errors and those of missing deps.
func New(cfg Config, deps Deps, log *slog.Logger) (*Server, error) {
	if err := errors.Join(cfg.Validate(), deps.validate()); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, deps: deps, log: log,
		auth:      newAuthenticator(cfg.Auth),
		limits:    newUserLimits(cfg.WriteRate, cfg.WriteBurst),
		stop:      make(chan struct{}),
		kindOrder: slices.Sorted(slices.Values(cfg.Kinds.Names())),
		cors:      newCORS(cfg.CORS),
	}
	s.metrics = deps.Metrics
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if err := s.metrics.attach(deps.Read, s.sseClients); err != nil {
		return nil, err
	}
	if deps.Log != nil {
		s.setLog(deps.Log, cfg.StartPosition)
	}
	s.hub = newHub(cfg.StreamBuffer, s.metrics)
	s.replays = newGate(replayReaders)
	s.streams.bound, s.inFlight.bound = int64(cfg.streamBound()), int64(cfg.MaxInFlight)
	s.metrics.limits(cfg)
	s.mux = http.NewServeMux()
	s.registerRoutes()
	s.handler = s.outer(s.mux)
	return s, nil
}

// SetLog gives a server built without Deps.Log (with an Opening) its log
// once open, and the log's head then (Config.StartPosition). Until then
// the server answers as its Opening says, without Ledger-Log: a node
// listens before it opens its log, whose migrations may wait for another
// node's (tens of seconds for an index build), so that a liveness probe
// sees a live process. Call it before the Opening is done, and once.
func (s *Server) SetLog(l Log, startPosition int64) error {
	if l == nil {
		return errors.New("SetLog: nil log")
	}
	if err := validLog(l); err != nil {
		return err
	}
	if startPosition < 0 {
		return fmt.Errorf("SetLog: start position %d is negative", startPosition)
	}
	if s.logSet.Load() {
		return errors.New("SetLog: the server has its log already")
	}
	s.setLog(l, startPosition)
	return nil
}

// setLog sets the log's fields, then logSet: a reader that loads logSet
// true sees them, as does one that saw the Opening done after SetLog.
func (s *Server) setLog(l Log, startPosition int64) {
	s.deps.Log, s.cfg.StartPosition = l, startPosition
	s.logID = canonicalLogID(l.LogID())
	s.etagTag = representationTag(s.cfg.Kinds, s.logID)
	s.metrics.advanceHead(startPosition)
	s.logSet.Store(true)
}

// validLog checks that l names itself with a UUID.
func validLog(l Log) error {
	if _, err := uuid.Parse(l.LogID()); err != nil {
		return fmt.Errorf("deps: Log's LogID %q is not a UUID", l.LogID())
	}
	return nil
}

// Handler returns the server's root handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on cfg.Listen and serves until ctx ends, then shuts down:
// it stops accepting, ends the live streams, and drains in-flight requests
// for at most cfg.DrainTimeout. It logs "listening" with the bound address
// once it accepts connections. It returns listen errors, or nil after a
// clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// maxHeaderBytes bounds a request's line and headers. The largest feed
// page docs/api.md allows, 200 targets of the longest type and id with
// every '@' or ':' percent-encoded as browsers send them, is ~85 KB of
// query: 64 KiB answered it 431.
const maxHeaderBytes = 128 << 10

// Serve is Run on a listener the caller opened; it closes ln. Like
// Config.Validate, it refuses a listener beyond loopback when no tokens are
// configured.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !s.cfg.Auth.Enabled() && !tcp.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("listener %s is not loopback and no tokens are configured", tcp)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// "OPTIONS *" goes through the pipeline too: net/http answered it
		// 200 itself, without the headers every answer carries.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:                  func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln = s.limit(ln, srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	go s.logListening(ctx, ln.Addr().String())
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown(ctx, srv, served)
}

// logListening logs "listening" with the bound address once the server
// answers every route: at once, or when its read model's opening is done
// (logging "starting" with the address meanwhile).
func (s *Server) logListening(ctx context.Context, addr string) {
	if status, pending := s.deps.Opening.pending(); pending {
		s.log.InfoContext(ctx, "starting", "addr", addr, "status", status)
		select {
		case <-s.deps.Opening.done:
		case <-ctx.Done():
			return
		}
	}
	s.log.InfoContext(ctx, "listening", "addr", addr, "auth", s.cfg.Auth.Enabled())
}

func (s *Server) shutdown(ctx context.Context, srv *http.Server, served <-chan error) error {
	s.log.InfoContext(ctx, "shutting down", "drain_timeout", s.cfg.DrainTimeout)
	s.closing.Store(true)
	s.stopOnce.Do(func() { close(s.stop) })
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(dctx)
	if err != nil {
		s.log.WarnContext(ctx, "drain timed out; closing connections", "err", err)
		_ = srv.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serr)
	}
	return nil
}

// ready waits (bounded by the consistency timeout) until the read model
// has applied pos and the log head of the start. It returns a 503 error
// when it has not, at once when shutdown starts: the drain would
// otherwise cut a waiting read without an answer.
func (s *Server) ready(ctx context.Context, pos int64) error {
	return s.await(ctx, pos, true)
}

// applied is ready for a write's own event: the write is durable, and the
// projections outlive the drain, so shutdown does not cut its wait (its
// answer would not say the write was done).
func (s *Server) applied(ctx context.Context, pos int64) error {
	return s.await(ctx, pos, false)
}

func (s *Server) await(ctx context.Context, asked int64, cutAtStop bool) error {
	pos := max(asked, s.cfg.StartPosition)
	if s.deps.Read.Applied() >= pos {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistencyTimeout)
	defer cancel()
	if cutAtStop {
		defer s.onStop(cancel)()
	}
	if err := s.deps.Read.WaitFor(wctx, pos); err != nil {
		return s.unreached(ctx, asked, pos, cutAtStop)
	}
	return nil
}

// unreached is await's answer when the read model did not reach pos (of
// which the request asked for asked) before the wait ended.
func (s *Server) unreached(ctx context.Context, asked, pos int64, cutAtStop bool) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if cutAtStop && s.closing.Load() {
		return errShuttingDown()
	}
	detail := fmt.Sprintf("the read model has applied position %d, not yet %d", s.deps.Read.Applied(), pos)
	if stopped := s.deps.Read.Stopped(); stopped != nil {
		detail += " (it is stopped until this node is restarted" + storeReason(stopped) + ")"
	} else if failed := s.deps.Read.Err(); failed != nil {
		detail += " (" + failed.Error() + "; it goes on by itself once the cause is fixed)"
	} else if cutAtStop {
		if err := s.beyondHead(ctx, asked); err != nil {
			return err
		}
	}
	return errNotCaughtUp(detail)
}

// readHead reads the log's head, waiting for it at most the consistency
// timeout, as a read waits for the read model: a database that stopped
// answering (a network that drops its packets, a frozen server) held the
// history and the opening of live streams for as long as it did.
func (s *Server) readHead(ctx context.Context) (int64, error) {
	hctx, cancel := context.WithTimeout(ctx, s.cfg.ConsistencyTimeout)
	defer cancel()
	head, err := s.deps.Log.LastPosition(hctx)
	if err != nil && ctx.Err() == nil && hctx.Err() != nil {
		return 0, slowHead{within: s.cfg.ConsistencyTimeout, err: err}
	}
	return head, err
}

// slowHead is a head read that did not end within its time: the store is
// unavailable, for the reason Reason gives.
type slowHead struct {
	within time.Duration
	err    error
}

func (e slowHead) Error() string { return e.Reason() + ": " + e.err.Error() }
func (e slowHead) Reason() string {
	return fmt.Sprintf("the log's head was not read within %s", e.within)
}
func (e slowHead) Unwrap() []error { return []error{domain.ErrUnavailable, e.err} }

// beyondHead is the 412 of a read that asked for a position its log does
// not hold, once waiting for it timed out: no answer the client was given
// came from beyond the log's head (every write is committed before it
// answers), so its log was restored from an older copy since (its
// identity kept), or the position was never this log's. Waiting longer
// would serve it only once other events took that position. nil when the
// position is within the head, or the head cannot be read within a second
// (the 503 then stands, within the write timeout that Config.Validate
// keeps at twice the consistency timeout or more).
func (s *Server) beyondHead(ctx context.Context, asked int64) error {
	hctx, cancel := context.WithTimeout(ctx, min(s.cfg.ConsistencyTimeout, time.Second))
	defer cancel()
	head, err := s.deps.Log.LastPosition(hctx)
	if err != nil || asked <= head {
		return nil
	}
	return errBeyondHead(fmt.Sprintf("position %d", asked), head)
}

// onStop calls f when shutdown starts, unless the function it returns is
// called first (which it must be, to end the goroutine it starts).
func (s *Server) onStop(f func()) (done func()) {
	ended := make(chan struct{})
	go func() {
		select {
		case <-s.stop:
			f()
		case <-ended:
		}
	}()
	return func() { close(ended) }
}

// canonicalLogID is id (a UUID, checked by Deps.validate) in the form
// requests are compared in: lower case, with dashes.
func canonicalLogID(id string) string { return uuid.MustParse(id).String() }

// representationTag names, in ETags, the configured kinds and the log
// (FNV-1a of the log's id, then "name," of each kind in sorted order like
// the bodies' maps): a restart with other kinds, or on another log whose
// positions repeat the old one's, never revalidates an old
// representation, and nodes of one log configured with the same kinds in
// another order tag the same bodies alike.
func representationTag(k domain.KindSet, logID string) string {
	h := fnv.New64a()
	h.Write([]byte(logID + ";"))
	for _, n := range slices.Sorted(slices.Values(k.Names())) {
		h.Write([]byte(n + ","))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}
