package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
)

// node is one `ledger serve` process of a cluster test.
type node struct {
	proc  *child
	base  string
	addr  string
	views string
}

// startNodes starts n servers on db at once (their migrations race), each
// with its own views file, and waits until every one is ready.
func startNodes(t *testing.T, db string, n int) []*node {
	t.Helper()
	nodes := make([]*node, n)
	for i := range nodes {
		nd := &node{addr: mustFreeAddr(t), views: filepath.Join(t.TempDir(), fmt.Sprintf("node%d.views", i))}
		nd.base = "http://" + nd.addr
		nd.proc = startChild(t, "serve", "--listen", nd.addr, "--db", db, "--views", nd.views)
		nodes[i] = nd
	}
	for _, nd := range nodes {
		nd.waitReady(t)
	}
	return nodes
}

func (nd *node) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	if err := waitReady(ctx, nd.base+"/readyz", 60*time.Second); err != nil {
		t.Fatalf("node %s not ready: %v\nstderr:\n%s", nd.addr, err, nd.proc.stderr)
	}
}

// restart starts the node again on the same address and views file.
func (nd *node) restart(t *testing.T, db string) {
	t.Helper()
	nd.proc = startChild(t, "serve", "--listen", nd.addr, "--db", db, "--views", nd.views)
	nd.waitReady(t)
}

// streamKey names one (user, target, kind) of the cluster test.
type streamKey struct{ user, target, kind string }

// clusterLoad drives writers over the nodes. Each writer owns its users,
// so the last write it saw acknowledged is the state of its streams.
type clusterLoad struct {
	nodes []*node
	down  sync.Map // index of a node that is being killed -> true

	mu        sync.Mutex
	acked     []ack
	last      map[streamKey]bool // last acknowledged state
	uncertain map[streamKey]bool // a write whose outcome is unknown
}

// write toggles a random stream of writer w on node i and reads it back at
// once on another node with the write's position.
func (l *clusterLoad) write(t *testing.T, w int, rng *rand.Rand, client *http.Client) {
	i := rng.IntN(len(l.nodes))
	k := streamKey{fmt.Sprintf("w%d-u%d", w, rng.IntN(5)), fmt.Sprintf("c%d", rng.IntN(12)), []string{"like", "collect"}[rng.IntN(2)]}
	method := http.MethodPut
	if rng.IntN(2) == 0 {
		method = http.MethodDelete
	}
	req, _ := http.NewRequestWithContext(t.Context(), method,
		fmt.Sprintf("%s/v1/targets/article/%s/%s/%s", l.nodes[i].base, k.target, k.kind, k.user), nil)
	res, err := client.Do(req)
	if err != nil {
		l.markUncertain(t, i, k, err)
		return
	}
	defer res.Body.Close()
	var a ack
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&a) != nil {
		l.markUncertain(t, i, k, fmt.Errorf("status %d", res.StatusCode))
		return
	}
	l.mu.Lock()
	if a.Changed {
		l.acked = append(l.acked, a)
	}
	l.last[k] = a.Active
	l.mu.Unlock()
	l.readBack(t, (i+1+rng.IntN(len(l.nodes)-1))%len(l.nodes), k, a, client)
}

// markUncertain records a write without an answer; only writes to a node
// being killed may end so.
func (l *clusterLoad) markUncertain(t *testing.T, i int, k streamKey, err error) {
	if _, down := l.down.Load(i); !down && t.Context().Err() == nil {
		t.Errorf("write to node %d: %v", i, err)
	}
	l.mu.Lock()
	l.uncertain[k] = true
	l.mu.Unlock()
}

// readBack reads k on node j with the write's position: the node must
// answer with the write's state (read-your-writes across nodes).
func (l *clusterLoad) readBack(t *testing.T, j int, k streamKey, a ack, client *http.Client) {
	if _, down := l.down.Load(j); down {
		return
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet,
		fmt.Sprintf("%s/v1/targets/article/%s?viewer=%s", l.nodes[j].base, k.target, k.user), nil)
	req.Header.Set("Ledger-Min-Position", strconv.FormatInt(a.Position, 10))
	res, err := client.Do(req)
	if err != nil {
		if _, down := l.down.Load(j); !down && t.Context().Err() == nil {
			t.Errorf("read back on node %d: %v", j, err)
		}
		return
	}
	defer res.Body.Close()
	var got struct {
		Viewer   map[string]bool `json:"viewer"`
		Position int64           `json:"position"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&got) != nil {
		if _, down := l.down.Load(j); !down {
			t.Errorf("read back on node %d at position %d: status %d", j, a.Position, res.StatusCode)
		}
		return
	}
	if got.Position < a.Position || got.Viewer[k.kind] != a.Active {
		t.Errorf("node %d after position %d: %s %s %s is %t at %d, the write on another node made it %t",
			j, a.Position, k.user, k.target, k.kind, got.Viewer[k.kind], got.Position, a.Active)
	}
}

// run drives writers until stop is closed.
func (l *clusterLoad) run(t *testing.T, writers int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			client := &http.Client{Timeout: 20 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.write(t, w, rng, client)
			}
		})
	}
	return &wg
}

// sseIDs follows node's event stream from the start and sends each
// event's id (its position).
func sseIDs(t *testing.T, base string) <-chan int64 {
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/v1/events/stream?after=0", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ids := make(chan int64, 1<<16)
	go func() {
		defer res.Body.Close()
		defer close(ids)
		rd := bufio.NewReader(res.Body)
		id := ""
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			if v, ok := strings.CutPrefix(line, "id: "); ok {
				id = v
			}
			// Only events carry data; the opening frame and heartbeats
			// repeat the resume id without one.
			if strings.HasPrefix(line, "data: ") {
				n, _ := strconv.ParseInt(id, 10, 64)
				ids <- n
			}
		}
	}()
	return ids
}

// TestClusterOnPostgres runs three `ledger serve` processes on one
// PostgreSQL schema, each with its own views file, under concurrent
// writers spread over the nodes: every write is read back at once on
// another node; an SSE client on node 0 sees every event in order; node 2
// is SIGKILLed under load and restarted; the nodes' role is locked out of
// the database (writes answer 503 with the cause) and let back in (writes
// heal). At the end every node serves the same counts, equal to a recount
// of the log and to the acknowledged writes, and `ledger verify` passes on
// every views file.
func TestClusterOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("long: three ledger processes on PostgreSQL")
	}
	schema := pgtest.Schema(t)
	db, role := pgtest.Role(t, schema)
	nodes := startNodes(t, db, 3)
	ids := sseIDs(t, nodes[0].base)
	load := &clusterLoad{nodes: nodes, last: map[streamKey]bool{}, uncertain: map[streamKey]bool{}}

	stop := make(chan struct{})
	wg := load.run(t, 12, stop)
	time.Sleep(2 * time.Second)
	load.down.Store(2, true)
	nodes[2].proc.kill()
	time.Sleep(time.Second)
	nodes[2].restart(t, db)
	load.down.Delete(2)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	checkOutage(t, nodes[0], role)

	var head int64
	if err := readLog(t.Context(), db, func(e domain.Event) error { head = e.Position; return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged writes, %d events", len(load.acked), head)
	if len(load.acked) < 100 {
		t.Fatalf("only %d acknowledged writes: the load did not run", len(load.acked))
	}
	checkLog(t, db, load.acked)
	checkSSE(t, ids, head)
	for _, nd := range nodes {
		if res, body := httpDo(t, http.MethodGet, nd.base+"/v1/targets/article/c0?min_position="+strconv.FormatInt(head, 10)); res.StatusCode != http.StatusOK {
			t.Fatalf("node %s did not reach position %d: %d %s", nd.addr, head, res.StatusCode, body)
		}
		checkCountsMatchLog(t, db, nd.base)
	}
	checkLastStates(t, load, db)
	checkCursorsAcrossNodes(t, nodes[0].base, nodes[1].base)
	for _, nd := range nodes {
		nd.proc.kill()
		if out, _, err := runCLI(t, "verify", "--db", db, "--views", nd.views); err != nil {
			t.Fatalf("verify %s: %v\n%s", nd.views, err, out)
		}
	}
}

// checkOutage locks the nodes' role out of PostgreSQL and terminates its
// sessions: a write answers 503 naming the database, so does a history
// read (it reads the log), reads of the local views still answer; once let
// back in, writes succeed again.
func checkOutage(t *testing.T, nd *node, role string) {
	t.Helper()
	pgtest.LockOut(t, role)
	res, body := httpDo(t, http.MethodPut, nd.base+"/v1/targets/article/outage/like/o1")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "database") {
		t.Fatalf("write while the database is unreachable: %d %s, want 503 naming the database", res.StatusCode, body)
	}
	if res, body := httpDo(t, http.MethodGet, nd.base+"/v1/targets/article/c0"); res.StatusCode != http.StatusOK {
		t.Fatalf("local read while the database is unreachable: %d %s", res.StatusCode, body)
	}
	if res, body := httpDo(t, http.MethodGet, nd.base+"/v1/events?after=0&limit=5"); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("history read while the database is unreachable: %d %s, want 503", res.StatusCode, body)
	}
	pgtest.LetIn(t, role)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, body := httpDo(t, http.MethodPut, nd.base+"/v1/targets/article/outage/like/o1")
		if res.StatusCode == http.StatusOK {
			return
		}
		if res.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("write after the database came back: %d %s", res.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSSE reads ids until head: each position exactly once, in order.
func checkSSE(t *testing.T, ids <-chan int64, head int64) {
	t.Helper()
	for want := int64(1); want <= head; want++ {
		select {
		case id, ok := <-ids:
			if !ok {
				t.Fatalf("event stream ended at %d of %d", want-1, head)
			}
			if id != want {
				t.Fatalf("event stream sent %d, want %d", id, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("event stream stalled at %d of %d", want-1, head)
		}
	}
}

// checkLastStates checks that each stream's final state in the log is its
// last acknowledged write, unless a later write's outcome is unknown.
func checkLastStates(t *testing.T, l *clusterLoad, db string) {
	t.Helper()
	final := map[streamKey]bool{}
	err := readLog(t.Context(), db, func(e domain.Event) error {
		final[streamKey{e.User.String(), e.Target.ID(), e.Kind.String()}] = e.On()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, on := range l.last {
		if !l.uncertain[k] && final[k] != on {
			t.Errorf("%v: the log ends %t, the last acknowledged write said %t", k, final[k], on)
		}
	}
}

// checkCursorsAcrossNodes: a "who liked it" cursor that one node issued
// reads the same page 2 on another node (a load balancer may send the
// next page anywhere).
func checkCursorsAcrossNodes(t *testing.T, a, b string) {
	t.Helper()
	var w struct{ Position int64 }
	for _, u := range []string{"p1", "p2", "p3"} {
		res, body := httpDo(t, http.MethodPut, a+"/v1/targets/article/paged/like/"+u)
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &w) != nil {
			t.Fatalf("like by %s: %d %s", u, res.StatusCode, body)
		}
	}
	at := "?limit=2&min_position=" + strconv.FormatInt(w.Position, 10)
	_, body := httpDo(t, http.MethodGet, a+"/v1/targets/article/paged/like"+at)
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if json.Unmarshal(body, &page) != nil || page.NextCursor == "" {
		t.Fatalf("page 1: %s", body)
	}
	next := at + "&cursor=" + page.NextCursor
	resA, onA := httpDo(t, http.MethodGet, a+"/v1/targets/article/paged/like"+next)
	resB, onB := httpDo(t, http.MethodGet, b+"/v1/targets/article/paged/like"+next)
	if resA.StatusCode != http.StatusOK || resB.StatusCode != http.StatusOK || !bytes.Equal(onA, onB) {
		t.Fatalf("page 2 on the issuing node: %d %s; on another: %d %s", resA.StatusCode, onA, resB.StatusCode, onB)
	}
}
