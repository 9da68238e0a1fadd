package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// ErrFailed marks the error of a projection that failed on an event and
// stopped; Err, WaitFor and Status return errors that wrap it and the cause.
var ErrFailed = errors.New("projection failed")

// Config configures a Set.
type Config struct {
	// Path is the views file; by convention ViewsPath(the log's path).
	Path string
	// Kinds are the configured kinds: every TargetView holds all of them.
	Kinds domain.KindSet
	// Projections names the projections to keep, each once; nil means
	// all. A query needs its own: Target and Targets read counts and
	// viewer, Actors actors, Collection collection; one outside the set
	// answers domain.ErrInvalidInput.
	Projections []string
	// OnProgress, when set, receives the progress of rebuilds that Open
	// starts (new projections, changed schema versions).
	OnProgress func(Progress)
	// OnStatus, when set, is called when a projection fails (Err set) and
	// when a failed projection applies again (Err nil). It must not block.
	OnStatus func(Status)
	// OnCheckpoint, when set, is called after each WAL checkpoint of the
	// views file (which runs on a connection of its own, never inside the
	// applier's commits) with how long it took and its error, nil on
	// success.
	OnCheckpoint func(took time.Duration, err error)
	// MemoryRows bounds the in-memory copy of the counts, viewer and
	// actors projections that answers Target, Targets and Actors: one row
	// per target, per user, per (user, target) with a kind on and per
	// actor. Past it, those reads go to SQLite. Default DefaultMemoryRows;
	// negative: no copy (tools that do not serve reads).
	MemoryRows int
	// FoldKeys bounds how many distinct interactions a rebuild folds in
	// memory before writing them out; one fold is written while the next
	// fills, so at most two are held. Default 1,000,000: a fold holds
	// about 64 MB when the store is a domain.LatestReader (only the
	// interactions that end on are kept) and about 200 MB otherwise.
	FoldKeys int
	// NoCatchUp makes Open build what is missing or of an older schema
	// but not apply the log's backlog: for a caller that rebuilds every
	// projection next (ledger rebuild), to which a catch-up is wasted work
	// and, on a views file the log has diverged from, a stop (ErrDiverged)
	// logged as an error just before the rebuild that repairs it.
	NoCatchUp bool
	// RebuildBehind makes Open rebuild, rather than catch up, a projection
	// whose checkpoint is so far behind the log's head that a rebuild gets
	// it there sooner (see rebuildBehind): a server's views file that was
	// left behind while the log grew; and refuse a views file that has
	// applied positions beyond the log's head (see refuseAhead). Tools that
	// inspect or repair the views file as it is (verify, rebuild) leave it
	// off. It also refuses a views file built from another log
	// (ErrOtherLog, see refuseOtherLog), one whose last applied event the
	// log does not hold at that position (ErrDiverged: an older copy of the
	// log restored and grown past it, see refuseDiverged) and one that
	// cannot be written (see refuseReadOnly). The zero value is the tools' setting: a program
	// that serves reads, as `ledger serve` does, sets it, or Open catches
	// up another log's views file with this log's events without a word.
	RebuildBehind bool
}

// Validate reports every problem with the config, joined.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, &domain.ValidationError{Field: "path", Reason: "required"})
	}
	if len(c.Kinds.Names()) == 0 {
		errs = append(errs, &domain.ValidationError{Field: "kinds", Reason: "at least one kind is required"})
	}
	for i, n := range c.Projections {
		if _, ok := projectionByName(n); !ok {
			errs = append(errs, &domain.ValidationError{Field: "projections", Reason: fmt.Sprintf("unknown projection %q", n)})
		}
		if slices.Contains(c.Projections[:i], n) {
			errs = append(errs, &domain.ValidationError{Field: "projections", Reason: fmt.Sprintf("%q is listed twice", n)})
		}
	}
	if c.FoldKeys < 0 {
		errs = append(errs, &domain.ValidationError{Field: "fold_keys", Reason: "must be >= 0"})
	}
	return errors.Join(errs...)
}

// ViewsPath returns the conventional views file for a log file.
func ViewsPath(logPath string) string { return logPath + ".views" }

// Set is the read side: the projections kept in one views file, their
// applied positions and their queries. It is safe for concurrent use.
type Set struct {
	v      *views
	closed atomic.Bool
	// moved is set once the log moved under the set (its head went back
	// behind what the set applied, or its event at the last applied
	// position is another, see WatchHead and checkEvent; or an append of
	// this process took a position the set applied, see Appending), and
	// never cleared.
	moved atomic.Pointer[error]
	mem   *memModel
	cfg   Config
	projs []projection
	log   *slog.Logger

	mu        sync.Mutex
	applied   map[string]int64
	failed    map[string]error
	changed   chan struct{} // closed and replaced whenever applied moves
	listeners map[int]func(AppliedEvent)
	nextID    int

	announceMu sync.Mutex
	announced  int64 // position of the last announced event
}

// Open opens (creating if needed) the views file of cfg. With a store, a
// projection that is missing or has another schema version is rebuilt from
// it, and then every projection is caught up to the log's head (CatchUp),
// before Open returns; a projection that fails to apply an event is marked
// failed (see Err) rather than failing Open. store may be nil when no
// rebuild is needed (or the log is empty). A nil logger discards. Errors:
// a *domain.ValidationError for a bad config, an error wrapping
// domain.ErrInvalidInput when a rebuild is needed and store is nil, the
// SQLite or store error (one wrapping ErrDamaged when SQLite finds the
// file malformed or not a database), or a rebuild's error. The views
// file's directory is created if missing, as the SQLite log's is.
//
// Open catches up whatever views file it is given. A program that serves
// reads sets Config.RebuildBehind, as `ledger serve` does: only then does
// Open refuse a views file built from another log or ahead of its log.
func Open(ctx context.Context, cfg Config, store domain.EventReader, log *slog.Logger) (*Set, error) {
	if err := makeDir(cfg.Path); err != nil {
		return nil, err
	}
	s, err := open(ctx, cfg, shared, log)
	if err != nil {
		return nil, damaged(ctx, cfg.Path, err)
	}
	if err := s.prepare(ctx, store); err != nil {
		s.v.close()
		return nil, damaged(ctx, cfg.Path, err)
	}
	s.mem.load(ctx, s.v.read)
	s.announcedOpen()
	return s, nil
}

// announcedOpen takes what counts applied before Open returned as
// announced: no listener was there to hear it (OnApplied comes after), and
// the first batches hand those events over again (the bus tail's event at
// the position it reads after, for checkEvent; a batch from the lowest
// checkpoint), which announcePassed would otherwise take for events a
// rebuild in another process applied.
func (s *Set) announcedOpen() {
	s.mu.Lock()
	counts := s.applied[Counts]
	s.mu.Unlock()
	s.announceMu.Lock()
	s.announced = max(s.announced, counts)
	s.announceMu.Unlock()
}

// makeDir creates the directory of a views file. Without it SQLite
// answers only "unable to open database file" for a path in a missing
// directory, where the log's store creates its own.
func makeDir(path string) error {
	if path == "" {
		return nil // Validate names it
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("open views %s: %w", path, err)
	}
	return nil
}

func open(ctx context.Context, cfg Config, d durability, log *slog.Logger) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Projections == nil {
		cfg.Projections = AllProjections
	}
	if cfg.FoldKeys == 0 {
		cfg.FoldKeys = 1_000_000
	}
	if cfg.MemoryRows == 0 {
		cfg.MemoryRows = DefaultMemoryRows
	}
	if !slices.Contains(cfg.Projections, Counts) || !slices.Contains(cfg.Projections, Viewer) {
		cfg.MemoryRows = -1
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := openViews(ctx, cfg.Path, d, log, cfg.OnCheckpoint)
	if err != nil {
		return nil, err
	}
	s := &Set{
		v: v, cfg: cfg, log: log, mem: newMemModel(cfg.Kinds, cfg.MemoryRows, log),
		applied: map[string]int64{}, failed: map[string]error{},
		changed: make(chan struct{}), listeners: map[int]func(AppliedEvent){},
	}
	for _, n := range cfg.Projections {
		p, _ := projectionByName(n)
		s.projs = append(s.projs, p)
	}
	return s, nil
}

// prepare creates or rebuilds what is missing or outdated, then loads the
// checkpoints.
func (s *Set) prepare(ctx context.Context, store domain.EventReader) error {
	if s.cfg.RebuildBehind {
		if err := s.v.refuseReadOnly(ctx); err != nil {
			return err
		}
	}
	var stale []string
	for _, p := range s.projs {
		ok, err := s.createIfEmpty(ctx, p, store)
		if err != nil {
			return err
		}
		if !ok {
			stale = append(stale, p.name())
		}
	}
	if len(stale) > 0 {
		if store == nil {
			return fmt.Errorf("open views: %v need a rebuild (ledger rebuild) and no store was given: %w", stale, domain.ErrInvalidInput)
		}
		s.log.InfoContext(ctx, "rebuilding projections", "projections", stale)
		if err := s.Rebuild(ctx, store, stale, s.cfg.OnProgress); err != nil {
			return err
		}
	}
	if err := s.loadCheckpoints(ctx); err != nil {
		return err
	}
	if store == nil {
		return nil
	}
	if s.cfg.RebuildBehind {
		head, err := store.LastPosition(ctx)
		if err != nil {
			return fmt.Errorf("open views: %w", err)
		}
		if err := s.refuseOtherLog(ctx, domain.LogIDOf(store), head); err != nil {
			return err
		}
		if err := s.refuseAhead(head); err != nil {
			return err
		}
		if err := s.refuseDiverged(ctx, store); err != nil {
			return err
		}
		if err := s.recordLog(ctx, domain.LogIDOf(store)); err != nil {
			return err
		}
		if err := s.rebuildBehind(ctx, store, head); err != nil {
			return err
		}
	}
	if s.cfg.NoCatchUp {
		return nil
	}
	// A projection that fails to catch up is marked failed (Err) but does
	// not fail Open: the caller may come to repair or inspect it.
	if err := s.CatchUp(ctx, store); err != nil && !errors.Is(err, ErrFailed) {
		return err
	}
	return nil
}

// createIfEmpty makes sure p's tables exist at its schema version. It
// creates them directly when p has no checkpoint and the log is empty (or
// there is no store), and reports false when p needs a rebuild instead.
func (s *Set) createIfEmpty(ctx context.Context, p projection, store domain.EventReader) (bool, error) {
	var current bool
	err := inTx(ctx, s.v.write, func(tx querier) error {
		_, version, ok, err := checkpoint(ctx, tx, p.name())
		if err != nil || ok {
			current = version == p.version()
			return err
		}
		if store != nil {
			last, err := store.LastPosition(ctx)
			if err != nil {
				return fmt.Errorf("open views: %w", err)
			}
			if last > 0 {
				return nil
			}
		}
		if err := createFresh(ctx, tx, p, ""); err != nil {
			return err
		}
		current = true
		if err := setBuiltFrom(ctx, tx, p.name(), domain.LogIDOf(store)); err != nil {
			return err
		}
		return setCheckpoint(ctx, tx, p.name(), p.version(), eventMark{})
	})
	return current, err
}

// createFresh creates p's tables with suffix sfx and their indexes.
func createFresh(ctx context.Context, tx querier, p projection, sfx string) error {
	if err := p.create(ctx, tx, sfx); err != nil {
		return fmt.Errorf("create %s: %w", p.name(), err)
	}
	gen, err := nextGeneration(ctx, tx)
	if err != nil {
		return err
	}
	if err := p.index(ctx, tx, sfx, gen); err != nil {
		return fmt.Errorf("index %s: %w", p.name(), err)
	}
	return nil
}

func (s *Set) loadCheckpoints(ctx context.Context) error {
	for _, p := range s.projs {
		pos, _, _, err := checkpoint(ctx, s.v.read, p.name())
		if err != nil {
			return fmt.Errorf("read checkpoint %s: %w", p.name(), err)
		}
		s.advance(p.name(), pos)
	}
	return nil
}

// Close closes the views file. Queries after Close fail.
func (s *Set) Close() error {
	s.closed.Store(true)
	s.mu.Lock()
	close(s.changed) // wake WaitFor callers: they find the set closed
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return s.v.close()
}

// usable is ErrClosed after Close: the in-memory copy would otherwise go
// on answering, and the views file's reads fail with SQLite's own error.
func (s *Set) usable(needs ...string) error {
	if s.closed.Load() {
		return fmt.Errorf("projections: %w", domain.ErrClosed)
	}
	for _, n := range needs {
		if !slices.Contains(s.cfg.Projections, n) {
			return fmt.Errorf("projections: this query reads %s, which is not in this set (Config.Projections %v): %w",
				n, s.cfg.Projections, domain.ErrInvalidInput)
		}
	}
	return nil
}

// readable is usable for the reads that answer from the tables, with a
// 503 whose Reason names the cause and the remedy (ErrUnreadable) when
// they must not be read: the log moved under the set (WatchHead,
// checkEvent, Appending), so
// the tables hold events the log no longer has; or the views file is no
// longer the one opened.
func (s *Set) readable(needs ...string) error {
	if err := s.Stopped(); err != nil {
		return err
	}
	return s.usable(needs...)
}

// Stopped is nil while the set may apply and answer, and otherwise the
// error its reads answer until a restart (ErrUnreadable, whose Reason
// names the cause and the remedy): the log moved under the set
// (WatchHead, checkEvent, Appending), or its views file is no longer the one opened (or that
// cannot be checked). A server answers a live stream with it rather than
// open one that would never carry an event.
func (s *Set) Stopped() error {
	if err := s.broken(); err != nil {
		return &readError{op: "projections", err: err, reason: err.Error()}
	}
	return nil
}

// broken is why the set must neither apply nor answer until a restart:
// the log moved under it (WatchHead, checkEvent, Appending), or its views
// file is no longer the one it opened. nil while neither.
func (s *Set) broken() error {
	if b := s.moved.Load(); b != nil {
		return *b
	}
	return s.v.replaced()
}

// Names returns the names of the projections of the set.
func (s *Set) Names() []string { return slices.Clone(s.cfg.Projections) }

// Kinds returns the configured kinds.
func (s *Set) Kinds() domain.KindSet { return s.cfg.Kinds }

func (s *Set) projection(name string) (projection, error) {
	for _, p := range s.projs {
		if p.name() == name {
			return p, nil
		}
	}
	return nil, &domain.ValidationError{Field: "projection", Reason: fmt.Sprintf("%q is not in this set", name)}
}

// LowestCheckpoint returns the lowest position the set's projections have
// applied, as stored in the views file: where a subscriber feeding them
// all starts. Errors: SQLite's error.
func (s *Set) LowestCheckpoint(ctx context.Context) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if len(s.projs) == 0 {
		return 0, nil
	}
	low := int64(head)
	for _, p := range s.projs {
		cp, _, _, err := checkpoint(ctx, s.v.read, p.name())
		if err != nil {
			return 0, fmt.Errorf("checkpoint %s: %w", p.name(), err)
		}
		low = min(low, cp)
	}
	return low, nil
}

// Checkpoint returns the position projection name has applied, as stored
// in the views file (another process may have moved it). Use it as a
// subscriber's starting point. Errors: *domain.ValidationError for an
// unknown name, or SQLite's error.
func (s *Set) Checkpoint(ctx context.Context, name string) (int64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if _, err := s.projection(name); err != nil {
		return 0, err
	}
	pos, _, _, err := checkpoint(ctx, s.v.read, name)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return pos, nil
}

// BuiltFrom returns the LogID (domain.Identified) of the log projection
// name's tables were built from, "" when the file records none (it was
// written before log identities, or from a store without one).
func (s *Set) BuiltFrom(ctx context.Context, name string) (string, error) {
	if err := s.usable(); err != nil {
		return "", err
	}
	if _, err := s.projection(name); err != nil {
		return "", err
	}
	id, err := builtFrom(ctx, s.v.read, "main", name)
	if err != nil {
		return "", fmt.Errorf("log of %s: %w", name, err)
	}
	return id, nil
}
