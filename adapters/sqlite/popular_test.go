package sqlite

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/adapters/storetest/loggen"
	"github.com/interactionledger/ledger/domain"
)

// popularLog is a log with a target of thousands of streams
// ("article/hot", loggen's), a user of more than manyStreams streams
// ("whale", collecting videos, some of them again after a cancel) and
// other users and targets around them. It returns the log's last position.
func popularLog(t *testing.T, s *EventStore) int64 {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := loggen.Generate(t.Context(), s, loggen.Config{Events: 32_000, Users: 3000, Targets: 300,
			HotShare: 0.5, Workers: 64, Seed: 1}); err != nil {
			t.Error(err)
		}
	})
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < manyStreams+100; i += 16 {
				st := storetest.MustStream(t, "whale", fmt.Sprintf("video/w%d", i))
				storetest.MustDecide(t, s, domain.DecideRequest{Command: storetest.Command(t, st, "collect", true)})
				if i%10 == 0 {
					storetest.MustDecide(t, s, domain.DecideRequest{Command: storetest.Command(t, st, "collect", false)})
					storetest.MustDecide(t, s, domain.DecideRequest{Command: storetest.Command(t, st, "collect", true)})
				}
			}
		})
	}
	wg.Wait()
	head, err := s.LastPosition(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return head
}

// TestPopularReadPages: pages of the history of a popular target or user,
// with every other filter, read one after another from several starts,
// are the reference scan's events, none missing and none twice; and a page
// of the popular target sorts none of its events: it scans the log from
// the page's start (a page took 360 ms on a target liked 600,000 times,
// and its export, page by page, 115 s).
func TestPopularReadPages(t *testing.T) {
	s := MustOpen(t, Config{Path: filepath.Join(t.TempDir(), "ledger.db")})
	head := popularLog(t, s)
	whale := storetest.MustUser(t, "whale")
	collect := storetest.MustKind(t, "collect")
	for _, f := range []domain.EventFilter{
		{TargetType: "article", TargetID: "hot"}, {TargetType: "article", TargetID: "hot", Kind: collect},
		{User: whale}, {User: whale, TargetType: "video"}, {TargetType: "article"},
		{TargetType: "article", TargetID: "a7"}, {User: storetest.MustUser(t, "u7")},
	} {
		all := referenceRead(t, s, f)
		if len(all) == 0 {
			t.Fatalf("%+v: the reference finds no event", f)
		}
		if f.TargetID == "hot" || f.User == whale {
			streams := map[domain.StreamID]bool{}
			for _, e := range all {
				streams[domain.StreamID{User: e.User, Target: e.Target}] = true
			}
			if len(streams) < manyStreams {
				t.Fatalf("%+v: %d streams, fewer than a popular target's %d", f, len(streams), manyStreams)
			}
		}
		for _, limit := range []int{7, 100, 1000} {
			for _, start := range []int64{0, head / 2, head - 50} {
				checkPages(t, s, f, limit, start, all)
			}
		}
	}

	type statement struct {
		q    string
		args []any
	}
	var statements []statement
	traceRead = func(q string, args []any) { statements = append(statements, statement{q, args}) }
	t.Cleanup(func() { traceRead = nil })
	hot := domain.EventFilter{TargetType: "article", TargetID: "hot", Limit: 100}
	if got := storetest.MustReadAll(t, s, hot); len(got) != 100 {
		t.Fatalf("a page of the hot target holds %d events, want 100", len(got))
	}
	traceRead = nil
	if len(statements) == 0 {
		t.Fatal("no statement read the page")
	}
	for _, st := range statements {
		if plan, _ := queryPlan(t, s, st.q, st.args); strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("a page of the hot target sorts its events:\n%s\n%s", st.q, plan)
		}
	}
}

// checkPages reads f's events after start, limit at a time, each page
// after the last one's last event, and checks them against all, f's
// events in the reference scan.
func checkPages(t *testing.T, s *EventStore, f domain.EventFilter, limit int, start int64, all []domain.Event) {
	t.Helper()
	i := slices.IndexFunc(all, func(e domain.Event) bool { return e.Position > start })
	if i < 0 {
		i = len(all)
	}
	want := all[i:]
	var got []domain.Event
	f.Limit, f.After = limit, start
	for {
		page := storetest.MustReadAll(t, s, f)
		got = append(got, page...)
		if len(page) < limit {
			break
		}
		f.After = page[len(page)-1].Position
	}
	if len(got) != len(want) {
		t.Fatalf("%+v from %d, %d a page: read %d events, the reference %d", f, start, limit, len(got), len(want))
	}
	for i := range want {
		if got[i].ID != want[i].ID {
			t.Fatalf("%+v from %d, %d a page: event %d is at %d, the reference's at %d", f, start, limit, i,
				got[i].Position, want[i].Position)
		}
	}
}
