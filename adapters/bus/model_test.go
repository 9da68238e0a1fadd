package bus_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// model is the read model computed the plain way, from the outcomes of the
// commands: which interactions are on (with the position of the turn-on),
// the counts, and the last position that touched each target.
type model struct {
	mu     sync.Mutex
	on     map[mkey]int64
	counts map[string]map[string]int64
	last   map[string]int64
}

type mkey struct{ user, target, kind string }

func newModel() *model {
	return &model{on: map[mkey]int64{}, counts: map[string]map[string]int64{}, last: map[string]int64{}}
}

func (m *model) record(k mkey, on bool, out domain.Outcome) {
	if !out.Changed {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts[k.target] == nil {
		m.counts[k.target] = map[string]int64{}
	}
	if on {
		m.on[k] = out.Position
		m.counts[k.target][k.kind]++
	} else {
		delete(m.on, k)
		m.counts[k.target][k.kind]--
	}
	m.last[k.target] = max(m.last[k.target], out.Position)
}

// universe is the users and targets of a model test: few enough that the
// same pairs toggle again and again, plus one hot target.
type universe struct {
	users, targets []string
}

func newUniverse() universe {
	var u universe
	for i := range 16 {
		u.users = append(u.users, "u"+strconv.Itoa(i))
	}
	for i := range 24 {
		u.targets = append(u.targets, "article/a"+strconv.Itoa(i))
	}
	for i := range 8 {
		u.targets = append(u.targets, "video/v"+strconv.Itoa(i))
	}
	u.targets = append(u.targets, "article/hot")
	return u
}

// drive runs n random commands from workers goroutines; each worker owns
// some users, so each stream's commands keep their order. It calls after
// once half the commands are done.
func drive(t *testing.T, l *domain.Ledger, m *model, u universe, n, workers int, half func()) {
	var done atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for range n / workers {
				user := u.users[w+workers*rng.IntN(len(u.users)/workers)]
				target := u.targets[rng.IntN(len(u.targets))]
				if rng.IntN(4) == 0 {
					target = "article/hot"
				}
				kind := kinds.Names()[rng.IntN(2)]
				on := rng.IntN(2) == 0
				out, err := l.Set(context.Background(), domain.SetRequest{
					User: mustParse(t, domain.NewUserID, user), Target: mustParse(t, domain.ParseTarget, target),
					Kind: mustParse(t, domain.ParseKind, kind), On: on,
				})
				if err != nil {
					t.Error(err)
					return
				}
				m.record(mkey{user, target, kind}, on, out)
				if done.Add(1) == int64(n/2) {
					once.Do(half)
				}
			}
		}()
	}
	wg.Wait()
}

// check compares every projection, through the read API, with the model.
func check(t *testing.T, s *projections.Set, store domain.EventStore, m *model, u universe) {
	t.Helper()
	ctx := context.Background()
	occurred := map[int64]string{}
	for e, err := range store.ReadEvents(ctx, domain.EventFilter{}) {
		if err != nil {
			t.Fatal(err)
		}
		occurred[e.Position] = e.OccurredAt.Truncate(time.Millisecond).UTC().String()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := make([]domain.Target, len(u.targets))
	for i, tg := range u.targets {
		ts[i] = mustParse(t, domain.ParseTarget, tg)
	}
	for _, user := range u.users {
		uid := mustParse(t, domain.NewUserID, user)
		// Each shape of request has its own statement: mixed types, one
		// type, one target.
		for _, group := range targetGroups(ts) {
			views, err := s.Targets(ctx, group, &uid)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range views {
				checkTarget(t, m, user, group[i].String(), v)
			}
		}
		for _, k := range kinds.Names() {
			checkCollection(t, s, m, occurred, user, k, "")
			checkCollection(t, s, m, occurred, user, k, "video")
		}
	}
	for _, tg := range u.targets {
		for _, k := range kinds.Names() {
			checkActors(t, s, m, occurred, tg, k)
		}
	}
}

// targetGroups is ts whole, ts split by type, and each target alone.
func targetGroups(ts []domain.Target) [][]domain.Target {
	groups := [][]domain.Target{ts}
	byType := map[string][]domain.Target{}
	for _, tg := range ts {
		byType[tg.Type()] = append(byType[tg.Type()], tg)
		groups = append(groups, []domain.Target{tg})
	}
	for _, g := range byType {
		groups = append(groups, g)
	}
	return groups
}

func checkTarget(t *testing.T, m *model, user, target string, v projections.TargetView) {
	t.Helper()
	for _, k := range kinds.Names() {
		if v.Counts[k] != m.counts[target][k] {
			t.Fatalf("%s %s: count %d, model %d", target, k, v.Counts[k], m.counts[target][k])
		}
		if _, on := m.on[mkey{user, target, k}]; v.Viewer[k] != on {
			t.Fatalf("%s %s %s: viewer %v, model %v", user, target, k, v.Viewer[k], on)
		}
	}
	if v.Position != m.last[target] {
		t.Fatalf("%s: position %d, model %d", target, v.Position, m.last[target])
	}
}

// want returns the model's newest-first list for a predicate.
func (m *model) want(match func(mkey) bool, label func(mkey) string, occurred map[int64]string) []string {
	type entry struct {
		pos int64
		s   string
	}
	var es []entry
	for k, pos := range m.on {
		if match(k) {
			es = append(es, entry{pos, fmt.Sprintf("%s@%d@%s", label(k), pos, occurred[pos])})
		}
	}
	slices.SortFunc(es, func(a, b entry) int { return cmp.Compare(b.pos, a.pos) })
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.s
	}
	return out
}

func checkActors(t *testing.T, s *projections.Set, m *model, occurred map[int64]string, target, kind string) {
	t.Helper()
	want := m.want(func(k mkey) bool { return k.target == target && k.kind == kind },
		func(k mkey) string { return k.user }, occurred)
	var got []string
	cursor := ""
	for {
		p, err := s.Actors(context.Background(), mustParse(t, domain.ParseTarget, target), mustParse(t, domain.ParseKind, kind), 3, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Items {
			got = append(got, fmt.Sprintf("%s@%d@%s", a.User, a.Position, a.Since))
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("actors %s %s:\n got %v\nwant %v", target, kind, got, want)
	}
}

func checkCollection(t *testing.T, s *projections.Set, m *model, occurred map[int64]string, user, kind, typ string) {
	t.Helper()
	want := m.want(func(k mkey) bool {
		return k.user == user && k.kind == kind && (typ == "" || k.target[:len(typ)+1] == typ+"/")
	}, func(k mkey) string { return k.target }, occurred)
	var got []string
	cursor := ""
	for {
		p, err := s.Collection(context.Background(), mustParse(t, domain.NewUserID, user), mustParse(t, domain.ParseKind, kind), typ, 4, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			got = append(got, fmt.Sprintf("%s@%d@%s", it.Target, it.Position, it.Since))
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("collection %s %s %q:\n got %v\nwant %v", user, kind, typ, got, want)
	}
}

func waitApplied(t *testing.T, s *projections.Set, store domain.EventStore) {
	t.Helper()
	last, err := store.LastPosition(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WaitFor(context.Background(), last); err != nil {
		t.Fatal(err)
	}
}

// TestModel drives thousands of random commands through the Ledger on the
// real store while the pipeline applies them; halfway it stops the
// pipeline and the set (a restart) while commands go on, and a rebuild
// runs in another "process" (a second Set on the same views file). Then
// every projection must equal the model, again after Verify, and again
// after an in-process rebuild.
func TestModel(t *testing.T) {
	n := 3000
	if !testing.Short() {
		n = 6000
	}
	dir := t.TempDir()
	store := MustStore(t, filepath.Join(dir, "ledger.db"))
	views := filepath.Join(dir, "ledger.db.views")
	s := MustSet(t, views, store)
	p := MustRun(t, store, s)
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	m, u := newModel(), newUniverse()

	var rebuilt sync.WaitGroup
	drive(t, l, m, u, n, 4, func() {
		p.stop()
		if err := s.Err(); err != nil {
			t.Errorf("after shutdown: Err() = %v", err)
		}
		s.Close()
		s = MustSet(t, views, store)
		p = MustRun(t, store, s)
		rebuilt.Add(1)
		go func() {
			defer rebuilt.Done()
			other := MustSet(t, views, store)
			if err := other.Rebuild(context.Background(), store, nil, nil); err != nil {
				t.Errorf("rebuild in another set: %v", err)
			}
		}()
	})
	rebuilt.Wait()
	waitApplied(t, s, store)
	check(t, s, store, m, u)

	r, err := s.Verify(context.Background(), store, t.TempDir())
	if err != nil || !r.OK() {
		t.Fatalf("verify: %v %+v", err, r.Differences)
	}
	if err := s.Rebuild(context.Background(), store, nil, nil); err != nil {
		t.Fatal(err)
	}
	check(t, s, store, m, u)
	p.stop()
	if err := s.Err(); err != nil {
		t.Fatalf("after shutdown: Err() = %v", err)
	}
}
