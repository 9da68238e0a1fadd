package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
)

// wantTarget reads a target on s and requires its counts and the viewer's
// flags to be exactly want (every configured kind, no other); it returns
// the ETag.
func wantTarget(t *testing.T, s *served, path string, counts map[string]int64, viewer map[string]bool, header ...string) string {
	t.Helper()
	res, b := s.call(t, "GET", path, "", header...)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d, want 200: %s", path, res.StatusCode, b)
	}
	v := decode[targetBody](t, b)
	if !maps.Equal(v.Counts, counts) || !maps.Equal(v.Viewer, viewer) {
		t.Fatalf("GET %s: counts %v viewer %v, want %v %v", path, v.Counts, v.Viewer, counts, viewer)
	}
	return res.Header.Get("ETag")
}

// wantKindsWarning requires the server's start to have warned that the
// views hold counts of the kinds named (", "-separated), not configured,
// or, with "", no such warning.
func wantKindsWarning(t *testing.T, s *served, kinds string) {
	t.Helper()
	var line string
	for l := range strings.Lines(s.logs.String()) {
		if strings.Contains(l, "not configured") && strings.Contains(l, `"level":"WARN"`) {
			line = l
		}
	}
	switch {
	case kinds == "" && line != "":
		t.Fatalf("a warning of kinds not configured with every kind configured: %s", line)
	case kinds != "" && !strings.Contains(line, `"kinds":"`+kinds+`"`):
		t.Fatalf("no warning naming the kinds %s the views hold and --kinds does not; logs:\n%s", kinds, s.logs)
	}
}

// TestKindsChangedOverRestarts follows an operator who adds a kind to a
// server with a log and a views file, removes it again while the log holds
// its events, then adds it back in another order (README, "Changing the
// kinds"): the views file is used as it is each time (it holds every kind
// the log holds), reads show exactly the configured kinds, a kind no
// longer configured is 404 everywhere it is named, its events stay in the
// history and in verify's comparison, the server warns at its start that
// the views hold counts it does not serve (a rename, e.g. collect to save,
// would otherwise hide every collect without a word), and once it is configured again its
// counts are those of the log, nothing lost or counted twice.
func TestKindsChangedOverRestarts(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kinds.db")
	const a1 = "/v1/targets/article/a-1?viewer=u1"
	s := startServe(t, db, nil, "--kinds", "like,collect")
	for _, w := range []string{"a-1/like/u1", "a-1/like/u2", "a-1/collect/u1"} {
		s.want(t, 200, "PUT", "/v1/targets/article/"+w, "")
	}
	before := wantTarget(t, s, a1, map[string]int64{"like": 2, "collect": 1}, map[string]bool{"like": true, "collect": true})
	s.stop(t)

	// Added: the new kind is in every map at 0, and an ETag of before
	// never revalidates the body that gained it.
	s = startServe(t, db, nil, "--kinds", "like,collect,bookmark")
	wantTarget(t, s, a1, map[string]int64{"like": 2, "collect": 1, "bookmark": 0}, map[string]bool{"like": true, "collect": true, "bookmark": false},
		"If-None-Match", before)
	s.want(t, 200, "PUT", "/v1/targets/article/a-1/bookmark/u1", "")
	s.want(t, 200, "PUT", "/v1/targets/article/a-2/bookmark/u2", "")
	mustContain(t, string(s.want(t, 200, "GET", "/v1/targets/article/a-1/bookmark", "")), `"user":"u1"`)
	mustContain(t, string(s.want(t, 200, "GET", "/v1/users/u2/bookmark", "")), `"id":"a-2"`)
	s.stop(t)

	// Removed while the log holds its events.
	s = startServe(t, db, nil, "--kinds", "like")
	wantKindsWarning(t, s, "bookmark, collect")
	wantTarget(t, s, a1, map[string]int64{"like": 2}, map[string]bool{"like": true})
	for _, r := range []struct{ method, path string }{
		{"PUT", "/v1/targets/article/a-1/bookmark/u1"}, {"DELETE", "/v1/targets/article/a-1/bookmark/u1"},
		{"GET", "/v1/targets/article/a-1/bookmark"}, {"GET", "/v1/users/u1/bookmark"}, {"GET", "/v1/events?kind=bookmark"},
		{"GET", "/v1/targets/article/a-1/collect"},
	} {
		mustContain(t, string(s.want(t, 404, r.method, r.path, "")), "urn:ledger:problem:unknown-kind")
	}
	history := string(s.want(t, 200, "GET", "/v1/events", ""))
	if n := strings.Count(history, `"kind":"bookmark"`); n != 2 {
		t.Fatalf("history of a log with 2 bookmark events, bookmark not configured: %d of them\n%s", n, history)
	}
	s.want(t, 200, "DELETE", "/v1/targets/article/a-1/like/u2", "")
	s.stop(t)
	out, _, err := runCLI(t, "verify", "--db", db, "--kinds", "like")
	if err != nil {
		t.Fatalf("verify --kinds like: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "history", "--db", db, "--kinds", "like,bookmark", "--kind", "bookmark")
	if err != nil || strings.Count(out, "\n") != 2 {
		t.Fatalf("history --kind bookmark: %v\n%s", err, out)
	}

	// Back, in another order: the counts of the log, and a bookmark
	// still on is still on.
	s = startServe(t, db, nil, "--kinds", "bookmark,collect,like")
	wantKindsWarning(t, s, "")
	wantTarget(t, s, "/v1/targets/article/a-2?viewer=u2", map[string]int64{"like": 0, "collect": 0, "bookmark": 1}, map[string]bool{"like": false, "collect": false, "bookmark": true})
	if w := decode[writeBody](t, s.want(t, 200, "PUT", "/v1/targets/article/a-1/bookmark/u1", "")); w.Changed || !w.Active {
		t.Fatalf("bookmark on again while on: %+v, want unchanged", w)
	}
	reordered := wantTarget(t, s, a1, map[string]int64{"like": 1, "collect": 1, "bookmark": 1}, map[string]bool{"like": true, "collect": true, "bookmark": true})
	s.stop(t)

	// The same kinds in the first order: the same body, the same ETag.
	s = startServe(t, db, nil, "--kinds", "like,collect,bookmark")
	s.want(t, 304, "GET", a1, "", "If-None-Match", reordered)
	s.stop(t)
	if out, _, err := runCLI(t, "verify", "--db", db); err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
}

// TestKindsDifferDuringARollingDeploy: two nodes of one PostgreSQL log, A
// already configured with a new kind and B not yet. A takes writes of it;
// B refuses them (404), still applies their events to its views file (it
// holds every kind the log holds), serves them in its history and event
// stream, and shows its own kinds only. Once B restarts with the new kind
// its counts of it are the log's, without a rebuild.
func TestKindsDifferDuringARollingDeploy(t *testing.T) {
	db := pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t))
	dir := t.TempDir()
	bViews := filepath.Join(dir, "b.views")
	a := startServe(t, db, nil, "--views", filepath.Join(dir, "a.views"), "--kinds", "like,collect,bookmark")
	b := startServe(t, db, nil, "--views", bViews, "--kinds", "like,collect", "--memory-rows", "0")

	w := decode[writeBody](t, a.want(t, 200, "PUT", "/v1/targets/article/a-1/bookmark/u1", ""))
	mustContain(t, string(b.want(t, 404, "PUT", "/v1/targets/article/a-1/bookmark/u2", "")), "urn:ledger:problem:unknown-kind")
	at := fmt.Sprintf("&min_position=%d", w.Position)
	wantTarget(t, b, "/v1/targets/article/a-1?viewer=u1"+at, map[string]int64{"like": 0, "collect": 0}, map[string]bool{"like": false, "collect": false})
	w = decode[writeBody](t, b.want(t, 200, "PUT", "/v1/targets/article/a-1/like/u1", ""))
	if !w.Changed || !maps.Equal(w.Viewer, map[string]bool{"like": true, "collect": false}) {
		t.Fatalf("like on B beside a bookmark of A: %+v", w)
	}
	at = fmt.Sprintf("&min_position=%d", w.Position)
	wantTarget(t, a, "/v1/targets/article/a-1?viewer=u1"+at, map[string]int64{"like": 1, "collect": 0, "bookmark": 1}, map[string]bool{"like": true, "collect": false, "bookmark": true})
	mustContain(t, string(b.want(t, 200, "GET", "/v1/events?after=0", "")), `"kind":"bookmark"`)
	b.want(t, 404, "GET", "/v1/events?kind=bookmark", "")
	b.stop(t)

	b = startServe(t, db, nil, "--views", bViews, "--kinds", "like,collect,bookmark")
	wantTarget(t, b, "/v1/targets/article/a-1?viewer=u1"+at, map[string]int64{"like": 1, "collect": 0, "bookmark": 1}, map[string]bool{"like": true, "collect": false, "bookmark": true})
	mustContain(t, string(b.want(t, 200, "GET", "/v1/targets/article/a-1/bookmark", "")), `"user":"u1"`)
	b.stop(t)
	a.stop(t)
	if out, _, err := runCLI(t, "verify", "--db", db, "--views", bViews); err != nil {
		t.Fatalf("verify B's views: %v\n%s", err, out)
	}
}
