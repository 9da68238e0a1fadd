package projections_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

func TestTarget(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, "")
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	l.add("u2", "article/a", like, true)
	l.add("u1", "article/a", coll, true)
	l.add("u2", "article/a", like, false)
	last := l.add("u3", "article/b", like, true)
	applyAll(t, s, l.events)

	t.Run("OK", func(t *testing.T) {
		u1 := mustUser(t, "u1")
		v, err := s.Target(ctx, mustTarget(t, "article/a"), &u1)
		if err != nil {
			t.Fatal(err)
		}
		if v.Counts["like"] != 1 || v.Counts["collect"] != 1 || !v.Viewer["like"] || !v.Viewer["collect"] || v.Position != 4 {
			t.Fatalf("got %+v", v)
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		v, err := s.Target(ctx, mustTarget(t, "article/zzz"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.Counts) != 2 || v.Counts["like"] != 0 || v.Viewer != nil || v.Position != 0 {
			t.Fatalf("got %+v", v)
		}
	})
	t.Run("Many", func(t *testing.T) {
		u2 := mustUser(t, "u2")
		ts := []domain.Target{mustTarget(t, "article/b"), mustTarget(t, "x/none"), mustTarget(t, "article/a"), mustTarget(t, "article/b")}
		vs, err := s.Targets(ctx, ts, &u2)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 4 || vs[0].Target != ts[0] || vs[2].Target != ts[2] || vs[3].Counts["like"] != 1 {
			t.Fatalf("got %+v", vs)
		}
		if vs[0].Position != last.Position || vs[2].Viewer["like"] || vs[1].Counts["collect"] != 0 {
			t.Fatalf("got %+v", vs)
		}
	})
	t.Run("ErrTooMany", func(t *testing.T) {
		ts := make([]domain.Target, projections.MaxTargets+1)
		for i := range ts {
			ts[i] = mustTarget(t, "article/a")
		}
		if _, err := s.Targets(ctx, ts, nil); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestApplySkipsApplied(t *testing.T) {
	s := MustOpen(t, "")
	l := newEventLog(t)
	for i := range 10 {
		l.add("u1", "article/a", like, i%2 == 0)
	}
	applyAll(t, s, l.events[:6])
	applyAll(t, s, l.events[3:]) // overlaps: 4..6 must be skipped
	applyAll(t, s, l.events)     // all duplicates
	v, err := s.Target(context.Background(), mustTarget(t, "article/a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Counts["like"] != 0 || v.Position != 10 || s.Applied() != 10 {
		t.Fatalf("got %+v, applied %d", v, s.Applied())
	}
}

func TestPages(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v")
	s := MustOpen(t, path)
	l := newEventLog(t)
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		l.add(u, "article/a", like, true)
	}
	l.add("u3", "article/a", like, false)
	l.add("u1", "video/v", like, true)
	l.add("u1", "article/b", like, true)
	applyAll(t, s, l.events)
	a := mustTarget(t, "article/a")

	t.Run("Actors", func(t *testing.T) {
		var users []string
		cursor := ""
		for {
			p, err := s.Actors(ctx, a, like, 2, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range p.Items {
				users = append(users, it.User.String())
			}
			if p.Next == "" {
				break
			}
			cursor = p.Next
		}
		if got := strings.Join(users, ","); got != "u5,u4,u2,u1" {
			t.Fatalf("actors %s", got)
		}
	})
	t.Run("Collection", func(t *testing.T) {
		u1 := mustUser(t, "u1")
		p, err := s.Collection(ctx, u1, like, "", 10, "")
		if err != nil || len(p.Items) != 3 || p.Items[0].Target.String() != "article/b" || p.Next != "" {
			t.Fatalf("%+v %v", p, err)
		}
		p, err = s.Collection(ctx, u1, like, "article", 1, "")
		if err != nil || len(p.Items) != 1 || p.Items[0].Target.String() != "article/b" || p.Next == "" {
			t.Fatalf("%+v %v", p, err)
		}
		p2, err := s.Collection(ctx, u1, like, "article", 1, p.Next)
		if err != nil || len(p2.Items) != 1 || p2.Items[0].Target.String() != "article/a" {
			t.Fatalf("%+v %v", p2, err)
		}
		if !p2.Items[0].Since.Equal(l.events[0].OccurredAt) {
			t.Fatalf("since %v, want %v", p2.Items[0].Since, l.events[0].OccurredAt)
		}
	})
	t.Run("ErrCursor", func(t *testing.T) {
		p, err := s.Actors(ctx, a, like, 1, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"x", corruptMiddle(p.Next), strings.Repeat("A", 32), "!!!"} {
			_, err := s.Actors(ctx, a, like, 1, c)
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != "cursor" {
				t.Fatalf("cursor %q: err %v", c, err)
			}
		}
		// A cursor of another list is refused.
		if _, err := s.Actors(ctx, mustTarget(t, "article/b"), like, 1, p.Next); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("err %v", err)
		}
		// Cursors survive a restart.
		s2 := MustOpen(t, path)
		if _, err := s2.Actors(ctx, a, like, 1, p.Next); err != nil {
			t.Fatal(err)
		}
	})
	// Another node's views file (or this one deleted and rebuilt) reads
	// a cursor the same: page 2 from it is page 2 here.
	t.Run("CursorOnAnotherViewsFile", func(t *testing.T) {
		other := MustOpen(t, "")
		applyAll(t, other, l.events)
		p, err := s.Actors(ctx, a, like, 2, "")
		if err != nil {
			t.Fatal(err)
		}
		here, err := s.Actors(ctx, a, like, 2, p.Next)
		if err != nil {
			t.Fatal(err)
		}
		there, err := other.Actors(ctx, a, like, 2, p.Next)
		if err != nil || fmt.Sprint(there) != fmt.Sprint(here) || len(there.Items) != 2 {
			t.Fatalf("page 2 on another views file: %+v, %v; here %+v", there, err, here)
		}
	})
	t.Run("ErrLimit", func(t *testing.T) {
		if _, err := s.Actors(ctx, a, like, projections.MaxLimit+1, ""); !errors.Is(err, domain.ErrInvalidInput) {
			t.Fatalf("err %v", err)
		}
		if _, err := s.Actors(ctx, a, mustKind("follow"), 1, ""); !errors.Is(err, domain.ErrUnknownKind) {
			t.Fatalf("err %v", err)
		}
	})
}

// TestCollectionByType: a page of one type of a user's collection finds
// its rows in the type index, whatever else the list holds (it walked the
// whole list by the primary key, so a type the user has few of cost a read
// of every row), and pages through them in order.
func TestCollectionByType(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, "")
	l := newEventLog(t)
	for i := range 300 {
		l.add("u1", fmt.Sprintf("article/a%d", i), coll, true)
		if i%100 == 50 {
			l.add("u1", fmt.Sprintf("video/v%d", i), coll, true)
		}
	}
	l.add("u1", "video/v150", coll, false)
	applyAll(t, s, l.events)
	u1 := mustUser(t, "u1")
	var got []string
	for cursor := ""; ; {
		p, err := s.Collection(ctx, u1, coll, "video", 1, cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range p.Items {
			got = append(got, it.Target.String())
		}
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	if strings.Join(got, ",") != "video/v250,video/v50" {
		t.Fatalf("videos %v, want video/v250,video/v50", got)
	}
	for _, typ := range []string{"video", "podcast"} {
		plan, err := projections.CollectionPlan(ctx, s, u1, coll, typ)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "USING COVERING INDEX collection_type_g") || strings.Contains(plan, "(user=? AND kind=? AND position<?)") {
			t.Errorf("type %s: the page does not search the type index:\n%s", typ, plan)
		}
	}
}

func TestNegativeCountStops(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, "")
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	applyAll(t, s, l.events)
	// A cancellation with no like before it: the log and the model disagree.
	l.add("u2", "article/b", like, false)
	for _, name := range s.Names() {
		err := s.Apply(ctx, name, l.events)
		if !errors.Is(err, projections.ErrInconsistent) || !errors.Is(err, projections.ErrFailed) {
			t.Fatalf("%s: err = %v", name, err)
		}
		if cp, _ := s.Checkpoint(ctx, name); cp != 1 {
			t.Fatalf("%s: checkpoint %d", name, cp)
		}
	}
	if err := s.Apply(ctx, projections.Counts, l.events); !errors.Is(err, projections.ErrNegativeCount) {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(s.Err(), projections.ErrInconsistent) {
		t.Fatalf("Err() = %v", s.Err())
	}
	if err := s.WaitFor(ctx, 2); !errors.Is(err, projections.ErrFailed) {
		t.Fatalf("WaitFor: %v", err)
	}
}

func TestWaitFor(t *testing.T) {
	s := MustOpen(t, "")
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	l.add("u2", "article/a", like, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.WaitFor(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	done := make(chan error)
	go func() { done <- s.WaitFor(context.Background(), 2) }()
	applyAll(t, s, l.events[:1])
	select {
	case err := <-done:
		t.Fatalf("returned early: %v", err)
	default:
	}
	applyAll(t, s, l.events[1:])
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestOnApplied(t *testing.T) {
	s := MustOpen(t, "")
	var mu sync.Mutex
	var got []string
	stop := s.OnApplied(func(a projections.AppliedEvent) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, a.Event.User.String()+":"+itoa(a.Counts["like"])+":"+itoa(a.Counts["collect"]))
	})
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	l.add("u2", "article/a", like, true)
	l.add("u1", "article/a", coll, true)
	l.add("u1", "article/a", like, false)
	applyAll(t, s, l.events)
	applyAll(t, s, l.events) // duplicates are not announced again
	stop()
	l.add("u3", "article/a", like, true)
	applyAll(t, s, l.events)
	mu.Lock()
	defer mu.Unlock()
	if s := strings.Join(got, " "); s != "u1:1:0 u2:2:0 u1:2:1 u1:1:1" {
		t.Fatalf("announced %s", s)
	}
}

// Events another process applied to the views file (ledger rebuild beside
// a running server moves the checkpoints) are still announced when the
// server's batch reaches them, with their target's counts as the file
// holds them: the event stream lost them before.
func TestOnAppliedAfterAnotherProcessApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v")
	s := MustOpen(t, path)
	var mu sync.Mutex
	var got []string
	s.OnApplied(func(a projections.AppliedEvent) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, itoa(a.Event.Position)+":"+itoa(a.Counts["like"]))
	})
	l := newEventLog(t)
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		l.add(u, "article/a", like, true)
	}
	applyAll(t, s, l.events[:1])
	other := MustOpen(t, path) // the rebuild's process
	applyAll(t, other, l.events[:4])
	applyAll(t, s, l.events[1:3]) // all passed already
	applyAll(t, s, l.events[3:])  // 4 passed, 5 new
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(got, " "); got != "1:1 2:4 3:4 4:4 5:5" {
		t.Fatalf("announced %s, want 1:1 2:4 3:4 4:4 5:5", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestApplyRejectsDisorder(t *testing.T) {
	s := MustOpen(t, "")
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	l.add("u2", "article/a", like, true)
	err := s.Apply(context.Background(), projections.Counts, []domain.Event{l.events[1], l.events[0]})
	if !errors.Is(err, domain.ErrInvalidInput) || s.Err() != nil {
		t.Fatalf("err %v, Err() %v", err, s.Err())
	}
}

// A feed page of one type reads a light viewer's rows with one range scan
// and a heavy viewer's (more rows than the scan takes) with key lookups;
// both must give every target's flags.
func TestTargetsLightAndHeavyViewers(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, "")
	l := newEventLog(t)
	for i := range 70 {
		l.add("heavy", "article/h"+strconv.Itoa(i), like, true)
	}
	l.add("heavy", "article/h0", coll, true)
	l.add("light", "article/h1", like, true)
	l.add("light", "video/h2", like, true)   // same id, other type
	l.add("light", "article/zz", coll, true) // not on the page
	applyAll(t, s, l.events)
	page := []domain.Target{mustTarget(t, "article/h0"), mustTarget(t, "article/h1"),
		mustTarget(t, "article/h2"), mustTarget(t, "article/h69"), mustTarget(t, "article/nope")}
	for _, c := range []struct {
		user string
		want []string // "like" / "collect" flags per page entry, "" for none
	}{
		{"heavy", []string{"like+collect", "like", "like", "like", ""}},
		{"light", []string{"", "like", "", "", ""}},
		{"nobody", []string{"", "", "", "", ""}},
	} {
		u := mustUser(t, c.user)
		vs, err := s.Targets(ctx, page, &u)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vs {
			var on []string
			for _, k := range []string{"like", "collect"} {
				if v.Viewer[k] {
					on = append(on, k)
				}
			}
			if got := strings.Join(on, "+"); got != c.want[i] {
				t.Errorf("%s, %s: viewer %q, want %q", c.user, page[i], got, c.want[i])
			}
		}
		if vs[0].Counts["like"] != 1 || vs[1].Counts["like"] != 2 || vs[0].Counts["collect"] != 1 || vs[4].Counts["like"] != 0 {
			t.Errorf("%s: counts %+v", c.user, vs)
		}
	}
}

// corruptMiddle changes the middle character of a cursor to another one
// (every bit of a middle base64 character counts, unlike the last's).
func corruptMiddle(c string) string {
	b := []byte(c)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// A batch under a context that has ended is not applied, and the set is
// not marked failed: a shutdown, not a fault.
func TestApplyEndedContext(t *testing.T) {
	s := MustOpen(t, "")
	l := newEventLog(t)
	l.add("u1", "article/a", like, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.ApplyAll(ctx, nil, l.events); !errors.Is(err, context.Canceled) {
		t.Fatalf("ApplyAll with an ended context: %v, want context.Canceled", err)
	}
	if s.Applied() != 0 || s.Err() != nil {
		t.Fatalf("after an ended context: applied %d, Err %v; want 0, nil", s.Applied(), s.Err())
	}
	if err := s.ApplyAll(context.Background(), nil, l.events); err != nil {
		t.Fatal(err)
	}
	if s.Applied() != 1 {
		t.Fatalf("applied %d, want 1", s.Applied())
	}
}

// One transaction applies each projection from its own checkpoint: here
// counts is ahead of the others, and no event is applied twice or missed.
func TestApplyAllFromEachCheckpoint(t *testing.T) {
	ctx := context.Background()
	s := MustOpen(t, "")
	l := newEventLog(t)
	for i := range 6 {
		l.add("u"+strconv.Itoa(i%3), "article/a", like, i < 3)
	}
	if err := s.Apply(ctx, projections.Counts, l.events[:4]); err != nil {
		t.Fatal(err)
	}
	if err := s.ApplyAll(ctx, nil, l.events[:5]); err != nil {
		t.Fatal(err)
	}
	for _, name := range s.Names() {
		if cp, err := s.Checkpoint(ctx, name); err != nil || cp != 5 {
			t.Fatalf("%s: checkpoint %d, %v; want 5", name, cp, err)
		}
	}
	if err := s.ApplyAll(ctx, nil, l.events); err != nil {
		t.Fatal(err)
	}
	v, err := s.Target(ctx, mustTarget(t, "article/a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.Actors(ctx, mustTarget(t, "article/a"), like, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Counts["like"] != 0 || len(page.Items) != 0 || s.Applied() != 6 {
		t.Fatalf("counts %v, actors %d, applied %d; want 0, 0, 6", v.Counts, len(page.Items), s.Applied())
	}
}
