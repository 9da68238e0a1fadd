package projections

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

// GenerateConfig describes a synthetic history for benchmarks
// (`ledger bench rebuild` and the package's testing.B benchmarks).
type GenerateConfig struct {
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

func (c *GenerateConfig) defaults() {
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
func Generate(ctx context.Context, store domain.EventStore, cfg GenerateConfig) (int64, error) {
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

type genStream struct {
	version int64
	state   domain.State
}

type genWorker struct {
	cfg     GenerateConfig
	rng     *rand.Rand
	users   []domain.UserID
	targets []domain.Target
	hot     domain.Target
	kinds   []domain.Kind
	streams map[domain.StreamID]*genStream
}

func newGenWorker(cfg GenerateConfig, w int, targets []domain.Target) *genWorker {
	g := &genWorker{
		cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(w))), targets: targets,
		kinds: cfg.Kinds.Kinds(), streams: map[domain.StreamID]*genStream{},
	}
	for u := w; u < cfg.Users; u += cfg.Workers {
		id, _ := domain.NewUserID("u" + strconv.Itoa(u))
		g.users = append(g.users, id)
	}
	g.hot, _ = domain.NewTarget("article", "hot")
	return g
}

func (g *genWorker) run(ctx context.Context, store domain.EventStore, n int64, done *atomic.Int64) error {
	for n > 0 {
		req := g.next(int(min(n, int64(g.cfg.PerAppend))))
		if _, err := store.Append(ctx, req); err != nil {
			return fmt.Errorf("generate: append %s: %w", req.Stream, err)
		}
		st := g.streams[req.Stream]
		st.version, st.state = req.Events[len(req.Events)-1].StreamVersion, req.State
		n -= int64(len(req.Events))
		before := done.Add(int64(len(req.Events))) - int64(len(req.Events))
		if g.cfg.Progress != nil && before>>16 != (before+int64(len(req.Events)))>>16 {
			g.cfg.Progress(before + int64(len(req.Events)))
		}
	}
	return nil
}

// next picks a stream and toggles random kinds of it k times.
func (g *genWorker) next(k int) domain.AppendRequest {
	t := g.targets[g.rng.IntN(len(g.targets))]
	if g.rng.Float64() < g.cfg.HotShare {
		t = g.hot
	}
	stream := domain.StreamID{User: g.users[g.rng.IntN(len(g.users))], Target: t}
	st := g.streams[stream]
	if st == nil {
		st = &genStream{}
		g.streams[stream] = st
	}
	req := domain.AppendRequest{Stream: stream, ExpectedVersion: st.version, State: st.state}
	now := time.Now().UTC()
	for range k {
		kind := g.kinds[g.rng.IntN(len(g.kinds))]
		e := domain.Decide(req.State, st.version+int64(len(req.Events)), domain.Command{
			Stream: stream, Kind: kind, On: !req.State.Active(kind), OccurredAt: now,
		})[0]
		req.Events = append(req.Events, e)
		req.State = domain.Evolve(req.State, e)
	}
	return req
}
