package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
)

// The paging tests: a client pages "who liked it" and a user's collection
// with small pages while other clients toggle the same target and user,
// and checks each page against the log read afterwards (docs/api.md,
// "Reads": newest first, a cursor names a list and a position, any node
// reads it, a views file rebuilt since reads it the same).

// pagedList is one list the pager walks: its path and query, the key of
// an item (a user, or a target's type/id) and the type a filtered list
// keeps ("" for every type).
type pagedList struct {
	path, query, kind, keep string
	key                     func(pageItem) string
}

// pageItem is an item of either list.
type pageItem struct {
	User   string `json:"user"`
	Target struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	Since string `json:"since"`
}

// readPage is one page as the pager got it: its items, and the position
// the node had applied when it began reading.
type readPage struct {
	items   []pageItem
	applied int64
}

var (
	actorsList = pagedList{path: "/v1/targets/article/hot/like", kind: "like",
		key: func(it pageItem) string { return it.User }}
	collectedList = pagedList{path: "/v1/users/reader/collect", kind: "collect",
		key: func(it pageItem) string { return it.Target.Type + "/" + it.Target.ID }}
	collectedArticles = pagedList{path: "/v1/users/reader/collect", query: "type=article", kind: "collect", keep: "article",
		key: func(it pageItem) string { return it.Target.Type + "/" + it.Target.ID }}
)

// TestPagingUnderWrites pages the lists with pages of 1 to 3 items, each
// page from either node (a PostgreSQL cluster of two, one reading its
// actors from memory and one from SQLite), half of them with the
// session's min_position, while eight writers toggle other users of the same target
// and other targets of the same user; a rebuild of the views file runs
// beside the server in the middle. Checked against the log afterwards:
// every item on for the whole paging comes exactly once, no item twice,
// newest first, never one already off at the position its page was read
// at, and `since` that of the turn-on shown.
func TestPagingUnderWrites(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) (rebuild []string, nodes []*served){
		"SQLite": func(t *testing.T) ([]string, []*served) {
			db := filepath.Join(t.TempDir(), "paging.db")
			return []string{"--db", db}, []*served{startServe(t, db, nil)}
		},
		"PostgreSQL": func(t *testing.T) ([]string, []*served) {
			db := pgtest.WithSchema(pgtest.URL(t), pgtest.Schema(t))
			a, b := filepath.Join(t.TempDir(), "a.views"), filepath.Join(t.TempDir(), "b.views")
			return []string{"--db", db, "--views", a}, []*served{
				startServe(t, db, nil, "--views", a),
				startServe(t, db, nil, "--views", b, "--memory-rows", "0"),
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			rebuild, nodes := open(t)
			p := &pager{t: t, nodes: nodes, rng: rand.New(rand.NewPCG(7, 11)), rebuildArgs: rebuild}
			p.seed()
			stop := make(chan struct{})
			writers := p.churn(8, stop)
			lists := []pagedList{actorsList, collectedList, collectedArticles}
			var walks [][]readPage
			var listOf []pagedList
			var polls []historyWalk
			for round := range 12 {
				for _, l := range lists {
					walks = append(walks, p.walk(l, round == 5))
					listOf = append(listOf, l)
				}
				polls = append(polls, p.walkHistory([]string{"kind=collect&user=reader", "target_type=video", "user=c3"}[round%3]))
			}
			close(stop)
			writers.Wait()
			end := p.applied()
			events := p.history()
			h := spellsOf(events)
			for i, w := range walks {
				h.check(t, listOf[i], w, end)
			}
			checkRevalidations(t, p.reads, events)
			for _, w := range polls {
				w.check(t, events)
			}
		})
	}
}

// pager drives one paging test.
type pager struct {
	t     *testing.T
	nodes []*served
	rng   *rand.Rand // the pager's; writers have their own
	// session is the highest position a write answered: the pager sends
	// it as min_position, as the TypeScript client does.
	session atomic.Int64
	// rebuildArgs are `ledger rebuild`'s flags for node 0's log and views.
	rebuildArgs []string
	// etag is the last ETag of article/hot as c0 sees it; reads those
	// revalidations' answers.
	etag  string
	reads []revalidation
}

// revalidation is one read of article/hot?viewer=c0 with If-None-Match.
type revalidation struct {
	sent, etag string
	status     int
	applied    int64
	body       targetBody
}

// revalidate reads article/hot as c0 from a node at random, with the
// last ETag it got.
func (p *pager) revalidate() {
	path := "/v1/targets/article/hot?viewer=c0"
	res, body := p.nodes[p.rng.IntN(len(p.nodes))].call(p.t, http.MethodGet, path, "", "If-None-Match", p.etag)
	r := revalidation{sent: p.etag, etag: res.Header.Get("ETag"), status: res.StatusCode,
		applied: mustAtoi64(p.t, res.Header.Get("Ledger-Position"))}
	switch res.StatusCode {
	case http.StatusOK:
		r.body = decode[targetBody](p.t, body)
	case http.StatusNotModified:
		if r.etag != p.etag {
			p.t.Errorf("GET %s: 304 with ETag %s for If-None-Match %s", path, r.etag, p.etag)
		}
	default:
		p.t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	p.etag = r.etag
	p.reads = append(p.reads, r)
}

func (p *pager) note(pos int64) {
	for {
		cur := p.session.Load()
		if pos <= cur || p.session.CompareAndSwap(cur, pos) {
			return
		}
	}
}

// write sends a toggle to node n and notes its position.
func (p *pager) write(t testing.TB, n int, method, path string) {
	res, body := p.nodes[n].call(t, method, path, "")
	if res.StatusCode != http.StatusOK {
		t.Errorf("%s %s: %d %s", method, path, res.StatusCode, body)
		return
	}
	p.note(decode[writeBody](t, body).Position)
}

// seed makes the items no writer touches: s0..s9 like article/hot, and
// reader collects article/st0..st9, in that order.
func (p *pager) seed() {
	for i := range 10 {
		p.write(p.t, i%len(p.nodes), http.MethodPut, fmt.Sprintf("/v1/targets/article/hot/like/s%d", i))
		p.write(p.t, i%len(p.nodes), http.MethodPut, fmt.Sprintf("/v1/targets/article/st%d/collect/reader", i))
	}
}

// churn starts writers that toggle c0..c7's likes of article/hot and
// reader's collects of article/ch0..ch5 and video/ch0..ch5 until stop.
func (p *pager) churn(writers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for {
				select {
				case <-stop:
					return
				default:
				}
				method := []string{http.MethodPut, http.MethodDelete}[rng.IntN(2)]
				path := fmt.Sprintf("/v1/targets/article/hot/like/c%d", rng.IntN(8))
				if rng.IntN(2) == 0 {
					path = fmt.Sprintf("/v1/targets/%s/ch%d/collect/reader", []string{"article", "video"}[rng.IntN(2)], rng.IntN(6))
				}
				p.write(p.t, rng.IntN(len(p.nodes)), method, path)
			}
		})
	}
	return &wg
}

// walk pages through l from its first page to its last; with rebuild, a
// `ledger rebuild` of node 0's views file runs after the first page.
func (p *pager) walk(l pagedList, rebuild bool) []readPage {
	t := p.t
	var pages []readPage
	cursor := ""
	for {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(1+p.rng.IntN(3)))
		// Half the pages carry the session (a page of a client that wrote),
		// half none: the cursor alone keeps the walk at or after its state.
		q.Set("min_position", "0")
		if p.rng.IntN(2) == 0 {
			q.Set("min_position", strconv.FormatInt(p.session.Load(), 10))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		path := l.path + "?" + q.Encode()
		if l.query != "" {
			path += "&" + l.query
		}
		p.revalidate()
		node := p.nodes[p.rng.IntN(len(p.nodes))]
		// A list has no ETag: If-None-Match never makes a page 304.
		res, body := node.call(t, http.MethodGet, path, "", "If-None-Match", "*")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		applied, err := strconv.ParseInt(res.Header.Get("Ledger-Position"), 10, 64)
		if err != nil || applied < mustAtoi64(t, q.Get("min_position")) {
			t.Fatalf("GET %s: Ledger-Position %q is below the min_position asked", path, res.Header.Get("Ledger-Position"))
		}
		page := decode[struct {
			Items      []pageItem `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}](t, body)
		if len(page.Items) > mustAtoi(t, q.Get("limit")) || (page.NextCursor != "" && len(page.Items) == 0) {
			t.Fatalf("GET %s: %d items, next_cursor %q", path, len(page.Items), page.NextCursor)
		}
		pages = append(pages, readPage{items: page.Items, applied: applied})
		if cursor = page.NextCursor; cursor == "" {
			return pages
		}
		if rebuild {
			rebuild = false
			p.rebuild()
		}
	}
}

// rebuild runs `ledger rebuild` on node 0's log and views file while it
// serves (docs/api.md: a views file rebuilt since reads a cursor the same).
func (p *pager) rebuild() {
	if _, errOut, err := runCLI(p.t, append([]string{"rebuild"}, p.rebuildArgs...)...); err != nil {
		p.t.Fatalf("rebuild while paging: %v\n%s", err, errOut)
	}
}

// applied is the highest position any node has applied: at least every
// position a page read.
func (p *pager) applied() int64 {
	var end int64
	for _, n := range p.nodes {
		res, _ := n.call(p.t, http.MethodGet, "/v1/targets/article/hot", "")
		end = max(end, mustAtoi64(p.t, res.Header.Get("Ledger-Position")))
	}
	return end
}

// spell is one stretch of a list item being on: from its turn-on (at
// position on, at time since) to its turn-off (off; 0 while still on).
type spell struct {
	on, off int64
	since   string
}

// pagingHistory holds the spells of each (kind, key) from the log.
type pagingHistory map[string][]spell

// loggedEvent is an event of the log, as the history answers it.
type loggedEvent struct {
	Position   int64  `json:"position"`
	Type       string `json:"type"`
	Kind       string `json:"kind"`
	User       string `json:"user"`
	OccurredAt string `json:"occurred_at"`
	Target     struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
}

func (e loggedEvent) on() bool { return e.Type == "interaction.added" }

// history reads the whole log.
func (p *pager) history() []loggedEvent {
	res, body := p.nodes[0].call(p.t, http.MethodGet, "/v1/events", "", "Accept", "application/x-ndjson")
	if res.StatusCode != http.StatusOK {
		p.t.Fatalf("history: %d %s", res.StatusCode, body)
	}
	var events []loggedEvent
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		events = append(events, decode[loggedEvent](p.t, sc.Bytes()))
	}
	return events
}

// spellsOf returns the spells of the paged lists' items: who liked
// (keyed "like <user>") and what reader collected ("collect <type/id>").
func spellsOf(events []loggedEvent) pagingHistory {
	h := pagingHistory{}
	for _, e := range events {
		key := e.Kind + " " + e.User
		if e.Kind == "collect" {
			key = e.Kind + " " + e.Target.Type + "/" + e.Target.ID
		}
		if e.on() {
			h[key] = append(h[key], spell{on: e.Position, since: e.OccurredAt})
		} else {
			h[key][len(h[key])-1].off = e.Position
		}
	}
	return h
}

// check matches one walk of l against the log: each item to the spell it
// shows (the newest one below the previous item's that was still on when
// its page was read), and each spell on from before the walk's first page
// to after its last one to exactly one item.
func (h pagingHistory) check(t *testing.T, l pagedList, pages []readPage, end int64) {
	t.Helper()
	seen := map[string]bool{}
	below := int64(1<<63 - 1)
	for i, pg := range pages {
		for _, it := range pg.items {
			key := l.key(it)
			if seen[key] {
				t.Errorf("%s %s: %s on two pages (page %d)", l.path, l.query, key, i)
			}
			seen[key] = true
			if l.keep != "" && it.Target.Type != l.keep {
				t.Errorf("%s %s: %s is not of type %s", l.path, l.query, key, l.keep)
			}
			s, ok := h.shown(l.kind+" "+key, it.Since, below, pg.applied)
			if !ok {
				t.Errorf("%s %s page %d (applied %d): %s since %s is no turn-on below %d still on at %d: %v",
					l.path, l.query, i, pg.applied, key, it.Since, below, pg.applied, h[l.kind+" "+key])
				continue
			}
			below = s.on
		}
	}
	first := pages[0].applied
	for key, spells := range h {
		kind, name, _ := strings.Cut(key, " ")
		if kind != l.kind || (l.keep != "" && !strings.HasPrefix(name, l.keep+"/")) {
			continue
		}
		for _, s := range spells {
			if s.on <= first && (s.off == 0 || s.off > end) && !seen[name] {
				t.Errorf("%s %s: %s, on from %d for the whole walk (%d..%d), never came", l.path, l.query, name, s.on, first, end)
			}
		}
	}
}

// shown returns the spell of key an item with since shows: the newest
// turned on below position below and not turned off by applied.
func (h pagingHistory) shown(key, since string, below, applied int64) (spell, bool) {
	spells := h[key]
	for i := len(spells) - 1; i >= 0; i-- {
		s := spells[i]
		if s.on < below && s.since == since && (s.off == 0 || s.off > applied) {
			return s, true
		}
	}
	return spell{}, false
}

func mustAtoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func mustAtoi64(t testing.TB, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

// checkRevalidations checks c0's reads of article/hot against its events:
// a 200's body is the target as the log has it after the event its
// position names, at or after the position the node had applied, and its
// ETag names that position; equal ETags tag equal bodies; a 304 is only
// answered while no event touched the target since the ETag's position.
func checkRevalidations(t *testing.T, reads []revalidation, events []loggedEvent) {
	t.Helper()
	var hot []loggedEvent
	for _, e := range events {
		if e.Target.Type == "article" && e.Target.ID == "hot" {
			hot = append(hot, e)
		}
	}
	bodies := map[string]targetBody{}
	for i, r := range reads {
		if r.status == http.StatusNotModified {
			at := etagPosition(t, r.sent)
			for _, e := range hot {
				if e.Position > at && e.Position <= r.applied {
					t.Errorf("read %d: 304 for %s (position %d), but event %d touched the target before %d, the position the node had applied",
						i, r.sent, at, e.Position, r.applied)
				}
			}
			continue
		}
		if r.etag == r.sent {
			t.Errorf("read %d: 200 with the ETag %s sent as If-None-Match", i, r.etag)
		}
		if etagPosition(t, r.etag) != r.body.Position {
			t.Errorf("read %d: ETag %s for a body at position %d", i, r.etag, r.body.Position)
		}
		if b, ok := bodies[r.etag]; ok && (b.Position != r.body.Position || b.Counts["like"] != r.body.Counts["like"] || b.Viewer["like"] != r.body.Viewer["like"]) {
			t.Errorf("read %d: ETag %s tags %+v and %+v", i, r.etag, b, r.body)
		}
		bodies[r.etag] = r.body
		var last, likes int64
		on := map[string]bool{}
		for _, e := range hot {
			if e.Position > r.body.Position {
				break
			}
			if on[e.User] = e.on(); e.on() {
				likes++
			} else {
				likes--
			}
			last = e.Position
		}
		newest := int64(0)
		for _, e := range hot {
			if e.Position <= r.applied {
				newest = e.Position
			}
		}
		if last != r.body.Position || r.body.Position < newest || likes != r.body.Counts["like"] || on["c0"] != r.body.Viewer["like"] {
			t.Errorf("read %d (applied %d): %+v, the log has %d likes, c0 %t after %d (last event at or before %d: %d)",
				i, r.applied, r.body, likes, on["c0"], last, r.applied, newest)
		}
	}
}

// etagPosition is the position an ETag names ("<tag>.<position>.<digest>.<viewer>").
func etagPosition(t *testing.T, etag string) int64 {
	t.Helper()
	parts := strings.Split(strings.Trim(etag, `"`), ".")
	if len(parts) < 3 {
		t.Fatalf("ETag %s", etag)
	}
	return mustAtoi64(t, parts[1])
}

// historyWalk is one walk of the history's JSON pages with a filter, from
// the start, following Link until a page has none.
type historyWalk struct {
	filter string
	items  []loggedEvent
	end    int64 // the last page's next_after
}

// walkHistory walks the history with filter, in pages of 1 to 3 events,
// each from either node, until a page has no Link or the walk has passed
// the last write noted when it began: the writers go on appending, and a
// walk that chased them to the head took more than 8 minutes in one CI run.
func (p *pager) walkHistory(filter string) historyWalk {
	t := p.t
	w := historyWalk{filter: filter}
	until := p.session.Load()
	path := fmt.Sprintf("/v1/events?%s&limit=%d", filter, 1+p.rng.IntN(3))
	for {
		res, body := p.nodes[p.rng.IntN(len(p.nodes))].call(t, http.MethodGet, path, "")
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
		}
		page := decode[struct {
			Items     []loggedEvent `json:"items"`
			NextAfter int64         `json:"next_after"`
		}](t, body)
		w.items = append(w.items, page.Items...)
		w.end = page.NextAfter
		link := res.Header.Get("Link")
		if link == "" || page.NextAfter >= until {
			return w
		}
		next, ok := strings.CutSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		if !ok || !strings.Contains(next, "after="+strconv.FormatInt(page.NextAfter, 10)) {
			t.Fatalf("GET %s: Link %s, next_after %d", path, link, page.NextAfter)
		}
		path = next
	}
}

// check: the walk holds every event of the log that matches its filter up
// to its last next_after, once each, in position order, and no other.
func (w historyWalk) check(t *testing.T, events []loggedEvent) {
	t.Helper()
	q, err := url.ParseQuery(w.filter)
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, e := range events {
		if e.Position <= w.end && (q.Get("kind") == "" || e.Kind == q.Get("kind")) &&
			(q.Get("user") == "" || e.User == q.Get("user")) && (q.Get("target_type") == "" || e.Target.Type == q.Get("target_type")) {
			want = append(want, e.Position)
		}
	}
	got := make([]int64, len(w.items))
	for i, e := range w.items {
		got[i] = e.Position
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history %s up to %d: %v, the log has %v", w.filter, w.end, got, want)
	}
}
