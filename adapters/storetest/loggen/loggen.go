package loggen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// Config describes a synthetic history.
type Config struct {
	Events  int64          // how many events to append
	Users   int            // distinct users; default 10,000
	Targets int            // distinct targets ("article/a<n>"); default 10,000
	Kinds   domain.KindSet // kinds to toggle; default like, collect
	// HotShare is the share of events that go to the hot target
	// "article/hot"; default 0.1.
	HotShare float64
	// Workers is how many appends are in flight at once, so that the
	// store's group commit fills large transactions; default 512.
	Workers int
	// PerAppend is how many toggles of one stream one append carries (a
	// user liking, collecting, un-liking in a row); default 4. More per
	// append generates faster; 1 is the Ledger's own shape.
	PerAppend int
	Seed      uint64
	// Progress, when set, is called with the number of events appended so
	// far, from a worker goroutine, every 65,536 events.
	Progress func(done int64)
}

func (c *Config) defaults() {
	if c.Users <= 0 {
		c.Users = 10_000
	}
	if c.Targets <= 0 {
		c.Targets = 10_000
	}
	if len(c.Kinds.Names()) == 0 {
		c.Kinds = domain.MustKindSet(domain.DefaultKinds...)
	}
	if c.HotShare <= 0 {
		c.HotShare = 0.1
	}
	if c.Workers <= 0 {
		c.Workers = 512
	}
	if c.PerAppend <= 0 {
		c.PerAppend = 4
	}
	c.Workers = min(c.Workers, c.Users)
}

// Generate appends cfg.Events random toggles to store through Append,
// each a real turn-on or turn-off of its stream, so the log is one the
// Ledger could have written. Users are split between workers, so each
// worker knows its streams' versions and states without reading them, and
// many appends in flight let the store batch them. The store should be
// empty of the generated streams (a fresh file). It returns how many
// events were appended, and the first Append error.
func Generate(ctx context.Context, store domain.CommandStore, cfg Config) (int64, error) {
	cfg.defaults()
	var done atomic.Int64
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	targets := make([]domain.Target, cfg.Targets)
	for i := range targets {
		targets[i], _ = domain.NewTarget("article", "a"+strconv.Itoa(i))
	}
	var wg sync.WaitGroup
	for w := range cfg.Workers {
		share := cfg.Events / int64(cfg.Workers)
		if int64(w) < cfg.Events%int64(cfg.Workers) {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := newGenWorker(cfg, w, targets)
			if err := g.run(ctx, store, share, &done); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return done.Load(), err
	}
	return done.Load(), ctx.Err()
}

// genStream is what a worker remembers of one stream. Workers remember
// every stream they have touched (2.5 million at 10M events), so it is
// kept small: the state is an index into the worker's distinct states
// (there are at most 2^kinds). Keyed by StreamID with a State of its own,
// the maps made the generator's peak RSS 277 MB at 3M events (~840 MB at
// 10M); packed like this, 151 MB at 3M.
type genStream struct {
	version int64
	state   int32
}

// genKey packs a stream's user and target indexes (the hot target is
// len(targets)) into a map key.
func genKey(user, target int) uint64 { return uint64(user)<<32 | uint64(target) }

type genWorker struct {
	cfg      Config
	rng      *rand.Rand
	users    []domain.UserID
	targets  []domain.Target
	hot      domain.Target
	kinds    []domain.Kind
	streams  map[uint64]genStream
	states   []domain.State
	stateIDs map[string]int32
}

func newGenWorker(cfg Config, w int, targets []domain.Target) *genWorker {
	g := &genWorker{
		cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(w))), targets: targets,
		kinds: cfg.Kinds.Kinds(), streams: map[uint64]genStream{},
		states: []domain.State{{}}, stateIDs: map[string]int32{"": 0},
	}
	for u := w; u < cfg.Users; u += cfg.Workers {
		id, _ := domain.NewUserID("u" + strconv.Itoa(u))
		g.users = append(g.users, id)
	}
	g.hot, _ = domain.NewTarget("article", "hot")
	return g
}

func (g *genWorker) run(ctx context.Context, store domain.CommandStore, n int64, done *atomic.Int64) error {
	for n > 0 {
		key, req := g.next(int(min(n, int64(g.cfg.PerAppend))))
		if _, err := store.Append(ctx, req); err != nil {
			return fmt.Errorf("generate: append %s: %w", req.Stream, err)
		}
		g.streams[key] = genStream{version: req.Events[len(req.Events)-1].StreamVersion, state: g.stateID(req.State)}
		n -= int64(len(req.Events))
		before := done.Add(int64(len(req.Events))) - int64(len(req.Events))
		if g.cfg.Progress != nil && before>>16 != (before+int64(len(req.Events)))>>16 {
			g.cfg.Progress(before + int64(len(req.Events)))
		}
	}
	return nil
}

// stateID returns the index of st in g.states, adding it if new.
func (g *genWorker) stateID(st domain.State) int32 {
	s := st.String()
	id, ok := g.stateIDs[s]
	if !ok {
		id = int32(len(g.states))
		g.states = append(g.states, st)
		g.stateIDs[s] = id
	}
	return id
}

// next picks a stream and toggles random kinds of it k times; it returns
// the stream's key in g.streams with the request.
func (g *genWorker) next(k int) (uint64, domain.AppendRequest) {
	ti := g.rng.IntN(len(g.targets))
	t := g.targets[ti]
	if g.rng.Float64() < g.cfg.HotShare {
		t, ti = g.hot, len(g.targets)
	}
	ui := g.rng.IntN(len(g.users))
	key := genKey(ui, ti)
	stream := domain.StreamID{User: g.users[ui], Target: t}
	st := g.streams[key] // the zero genStream is a new stream: version 0, nothing on
	req := domain.AppendRequest{Stream: stream, ExpectedVersion: st.version, State: g.states[st.state]}
	now := time.Now().UTC()
	for range k {
		kind := g.kinds[g.rng.IntN(len(g.kinds))]
		e := domain.Decide(req.State, st.version+int64(len(req.Events)), domain.Command{
			Stream: stream, Kind: kind, On: !req.State.Active(kind), OccurredAt: now,
		})[0]
		req.Events = append(req.Events, e)
		req.State = domain.Evolve(req.State, e)
	}
	return key, req
}
