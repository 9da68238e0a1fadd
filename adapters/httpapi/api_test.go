package httpapi

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/adapters/sqlite/sqlitetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

func TestWrites(t *testing.T) {
	e := MustEnv(t, nil)
	t.Run("OK", func(t *testing.T) {
		b := e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
		w := mustDecode[writeResponse](t, b)
		if !w.Changed || !w.Active || w.Counts["like"] != 1 || !w.Viewer["like"] || w.Viewer["collect"] || w.StreamVersion != 1 || w.Position < 1 {
			t.Fatalf("first like: %+v", w)
		}
		again := mustDecode[writeResponse](t, e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", ""))
		if again.Changed || again.Position != w.Position || again.Counts["like"] != 1 {
			t.Fatalf("repeat like: %+v", again)
		}
		off := mustDecode[writeResponse](t, e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", ""))
		if !off.Changed || off.Active || off.Counts["like"] != 0 || off.StreamVersion != 2 || off.Position <= w.Position {
			t.Fatalf("cancel: %+v", off)
		}
	})
	t.Run("LedgerPositionHeader", func(t *testing.T) {
		res, b := e.do("PUT", "/v1/targets/article/a-2/collect/u1", "")
		w := mustDecode[writeResponse](t, b)
		if res.Header.Get("Ledger-Position") != fmt.Sprint(w.Position) {
			t.Fatalf("Ledger-Position %q, body position %d", res.Header.Get("Ledger-Position"), w.Position)
		}
	})
	t.Run("Metadata", func(t *testing.T) {
		e.expect(200, "PUT", "/v1/targets/article/m-1/like/u9", `{"metadata":{"source":"web"}}`,
			"Content-Type", "application/json", "X-Request-ID", "req-123")
		hist := mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?target_type=article&target_id=m-1", ""))
		want := domain.MustMetadata(map[string]string{"source": "web", "request_id": "req-123"})
		if len(hist.Items) != 1 || !hist.Items[0].Metadata.Equal(want) {
			t.Fatalf("metadata: %+v", hist.Items)
		}
	})
	// Only the caller's entries count against the limit of 16: the
	// server's request_id and idempotency_key come on top.
	t.Run("MetadataAtTheLimit", func(t *testing.T) {
		e.expect(200, "PUT", "/v1/targets/article/m-2/like/u9", metadataBody(domain.MaxMetadataEntries),
			"Content-Type", "application/json", "X-Request-ID", "req-16", "Idempotency-Key", "key-16")
		hist := mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?target_type=article&target_id=m-2", ""))
		if len(hist.Items) != 1 || hist.Items[0].Metadata.Len() != domain.MaxMetadataEntries+2 {
			t.Fatalf("metadata: %+v", hist.Items)
		}
	})
	for _, key := range []string{"request_id", "idempotency_key"} {
		t.Run("ReservedKey/"+key, func(t *testing.T) {
			b := e.expect(400, "PUT", "/v1/targets/article/m-3/like/u9", `{"metadata":{"`+key+`":"mine"}}`,
				"Content-Type", "application/json")
			p := mustDecode[Problem](t, b)
			if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "metadata" || !strings.Contains(p.InvalidParams[0].Reason, `"`+key+`"`) {
				t.Fatalf("problem %s does not name the reserved key %q", b, key)
			}
		})
	}
	t.Run("IdempotencyKey", func(t *testing.T) {
		first := mustDecode[writeResponse](t, e.expect(200, "PUT", "/v1/targets/article/k-1/like/u2", "", "Idempotency-Key", "key-1"))
		e.expect(200, "DELETE", "/v1/targets/article/k-1/like/u2", "")
		replay := mustDecode[writeResponse](t, e.expect(200, "PUT", "/v1/targets/article/k-1/like/u2", "", "Idempotency-Key", "key-1"))
		if replay.Position != first.Position || !replay.Active || !replay.Changed {
			t.Fatalf("replay %+v, first %+v", replay, first)
		}
		// The first outcome, with the viewer and counts of one read: not
		// the first viewer (liked) beside the current counts (0 likes).
		if replay.Viewer["like"] || replay.Counts["like"] != 0 {
			t.Fatalf("replay's viewer %v with counts %v: not one state of the log", replay.Viewer, replay.Counts)
		}
		p := mustDecode[Problem](t, e.expect(422, "DELETE", "/v1/targets/article/k-1/like/u2", "", "Idempotency-Key", "key-1"))
		if strings.Join(p.DifferingFields, ",") != "method" || p.Position != first.Position || !strings.Contains(p.Detail, "method") {
			t.Fatalf("problem %+v: want differing_fields [method], the first request's position %d, and the detail naming them", p, first.Position)
		}
		p = mustDecode[Problem](t, e.expect(422, "PUT", "/v1/targets/article/k-1/collect/u2", `{"metadata":{"source":"web"}}`,
			"Idempotency-Key", "key-1", "Content-Type", "application/json", "If-Match", `"v9"`))
		if got := strings.Join(p.DifferingFields, ","); got != "kind,if_match,metadata" || strings.Contains(p.Detail, "web") {
			t.Fatalf("problem %+v: want differing_fields kind, if_match, metadata, and no value of the request", p)
		}
	})
	t.Run("IfMatch", func(t *testing.T) {
		e.expect(200, "PUT", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v0"`)
		e.expect(412, "DELETE", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v0"`)
		e.expect(200, "DELETE", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v1"`)
	})
}

func TestWriteErrors(t *testing.T) {
	e := MustEnv(t, nil)
	big := `{"metadata":{"a":"` + strings.Repeat("x", MaxBodyBytes) + `"}}`
	cases := []struct {
		name, method, path, body string
		header                   []string
		status                   int
	}{
		{"BadType", "PUT", "/v1/targets/Article/a/like/u", "", nil, 400},
		{"BadID", "PUT", "/v1/targets/article/a%20b/like/u", "", nil, 400},
		{"BadKindForm", "PUT", "/v1/targets/article/a/Like/u", "", nil, 400},
		{"BadUser", "PUT", "/v1/targets/article/a/like/u%2Fx", "", nil, 400},
		{"UnknownKind", "PUT", "/v1/targets/article/a/follow/u", "", nil, 404},
		{"BadIfMatch", "PUT", "/v1/targets/article/a/like/u", "", []string{"If-Match", "v1"}, 400},
		{"BadIdempotencyKey", "PUT", "/v1/targets/article/a/like/u", "", []string{"Idempotency-Key", strings.Repeat("k", 129)}, 400},
		{"UnknownField", "PUT", "/v1/targets/article/a/like/u", `{"meta":{}}`, []string{"Content-Type", "application/json"}, 400},
		{"NotJSON", "PUT", "/v1/targets/article/a/like/u", `{"metadata":`, []string{"Content-Type", "application/json"}, 400},
		{"MetadataNotString", "PUT", "/v1/targets/article/a/like/u", `{"metadata":{"a":1}}`, []string{"Content-Type", "application/json"}, 400},
		{"TooManyMetadata", "PUT", "/v1/targets/article/a/like/u", metadataBody(domain.MaxMetadataEntries + 1), []string{"Content-Type", "application/json"}, 400},
		{"TrailingData", "PUT", "/v1/targets/article/a/like/u", `{} {}`, []string{"Content-Type", "application/json"}, 400},
		{"TooLarge", "PUT", "/v1/targets/article/a/like/u", big, []string{"Content-Type", "application/json"}, 413},
		{"MediaType", "PUT", "/v1/targets/article/a/like/u", `source=web`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415},
		{"ContentEncoding", "PUT", "/v1/targets/article/a/like/u", `{}`, []string{"Content-Type", "application/json", "Content-Encoding", "br"}, 415},
		{"UncleanPath", "PUT", "/v1/targets/article/../a/like/u", "", nil, 400},
		{"UnknownRoute", "GET", "/v2/nothing", "", nil, 404},
		{"EscapedSlash", "GET", "/v1/targets/a%2Fx", "", nil, 404},
		{"WrongMethod", "POST", "/v1/targets/article/a/like/u", "", nil, 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.expect(c.status, c.method, c.path, c.body, c.header...)
		})
	}
	t.Run("UnroutedNamesThePathAsSent", func(t *testing.T) {
		if b := e.expect(404, "GET", "/v1/targets/a%2Fx", ""); !strings.Contains(string(b), "/v1/targets/a%2Fx") {
			t.Fatalf("detail names another path: %s", b)
		}
	})
	t.Run("AllowHeader", func(t *testing.T) {
		res, _ := e.do("PATCH", "/v1/targets/article/a/like/u", "")
		if allow := res.Header.Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
			t.Fatalf("Allow %q", allow)
		}
	})
	t.Run("NothingAppended", func(t *testing.T) {
		if pos, _ := e.store.LastPosition(t.Context()); pos != 0 {
			t.Fatalf("rejected writes appended up to %d", pos)
		}
	})
}

// metadataBody is a write body with n metadata entries.
func metadataBody(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"k%d":"v"`, i))
	}
	return `{"metadata":{` + strings.Join(parts, ",") + `}}`
}

func TestReads(t *testing.T) {
	e := MustEnv(t, nil)
	for _, u := range []string{"u1", "u2", "u3"} {
		e.expect(200, "PUT", "/v1/targets/article/a-1/like/"+u, "")
	}
	last := mustDecode[writeResponse](t, e.expect(200, "PUT", "/v1/targets/article/a-1/collect/u1", ""))
	t.Run("Target", func(t *testing.T) {
		res, b := e.do("GET", "/v1/targets/article/a-1?viewer=u2", "")
		v := mustDecode[targetResponse](t, b)
		if res.StatusCode != 200 || v.Counts["like"] != 3 || v.Counts["collect"] != 1 || !v.Viewer["like"] || v.Viewer["collect"] || v.Position != last.Position {
			t.Fatalf("target: %d %s", res.StatusCode, b)
		}
		if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" || res.Header.Get("Ledger-Position") == "" {
			t.Fatalf("headers: %v", res.Header)
		}
		res2, _ := e.do("GET", "/v1/targets/article/a-1?viewer=u2", "", "If-None-Match", res.Header.Get("ETag"))
		if res2.StatusCode != http.StatusNotModified {
			t.Fatalf("If-None-Match: %d", res2.StatusCode)
		}
		res3, _ := e.do("GET", "/v1/targets/article/a-1?viewer=u3", "", "If-None-Match", res.Header.Get("ETag"))
		if res3.StatusCode != 200 {
			t.Fatalf("another viewer's ETag matched: %d", res3.StatusCode)
		}
		noViewer := mustDecode[map[string]any](t, e.expect(200, "GET", "/v1/targets/article/a-1", ""))
		if _, ok := noViewer["viewer"]; ok {
			t.Fatalf("viewer without ?viewer: %v", noViewer)
		}
	})
	t.Run("UnknownTarget", func(t *testing.T) {
		v := mustDecode[targetResponse](t, e.expect(200, "GET", "/v1/targets/article/none?viewer=u1", ""))
		if v.Counts["like"] != 0 || v.Viewer["like"] || v.Position != 0 {
			t.Fatalf("unknown target: %+v", v)
		}
	})
	t.Run("Batch", func(t *testing.T) {
		b := mustDecode[batchResponse](t, e.expect(200, "GET", "/v1/targets?t=article/none&t=article/a-1&viewer=u1", ""))
		if len(b.Items) != 2 || b.Items[0].Target.ID != "none" || b.Items[1].Counts["like"] != 3 || !b.Items[1].Viewer["collect"] || b.Position < last.Position {
			t.Fatalf("batch: %+v", b)
		}
		e.expect(400, "GET", "/v1/targets", "")
		e.expect(400, "GET", "/v1/targets?t=article", "")
		e.expect(400, "GET", "/v1/targets?"+strings.Repeat("t=article/a&", 201), "")
	})
	t.Run("BatchTwice", func(t *testing.T) {
		// A feed page may show an item twice: the batch read answers each
		// t in its place. The stream takes a set of targets: twice is 400.
		const twice = "t=article/a-1&t=article/a-2&t=article/a-1"
		got := mustDecode[batchResponse](t, e.expect(200, "GET", "/v1/targets?"+twice, ""))
		if len(got.Items) != 3 || got.Items[0].Target.ID != "a-1" || got.Items[1].Target.ID != "a-2" ||
			!reflect.DeepEqual(got.Items[0], got.Items[2]) {
			t.Fatalf("a target given twice: %+v, want it answered in both places", got.Items)
		}
		stream := mustDecode[Problem](t, e.expect(400, "GET", "/v1/events/stream?"+twice, "", "Accept", "text/event-stream"))
		if len(stream.InvalidParams) != 1 || stream.InvalidParams[0].Reason != `"article/a-1" is given twice` {
			t.Fatalf("the stream given a target twice: %+v", stream)
		}
	})
	t.Run("Actors", func(t *testing.T) {
		p1 := mustDecode[pageResponse[actorJSON]](t, e.expect(200, "GET", "/v1/targets/article/a-1/like?limit=2", ""))
		if len(p1.Items) != 2 || p1.Items[0].User != "u3" || p1.NextCursor == "" {
			t.Fatalf("page 1: %+v", p1)
		}
		p2 := mustDecode[pageResponse[actorJSON]](t, e.expect(200, "GET", "/v1/targets/article/a-1/like?limit=2&cursor="+p1.NextCursor, ""))
		if len(p2.Items) != 1 || p2.Items[0].User != "u1" || p2.NextCursor != "" {
			t.Fatalf("page 2: %+v", p2)
		}
		e.expect(400, "GET", "/v1/targets/article/a-1/like?cursor=forged", "")
		e.expect(400, "GET", "/v1/targets/article/a-1/like?limit=0", "")
		e.expect(400, "GET", "/v1/targets/article/a-1/like?limit=1001", "")
		e.expect(404, "GET", "/v1/targets/article/a-1/follow", "")
	})
	t.Run("Collection", func(t *testing.T) {
		p := mustDecode[pageResponse[itemJSON]](t, e.expect(200, "GET", "/v1/users/u1/collect?type=article", ""))
		if len(p.Items) != 1 || p.Items[0].Target.ID != "a-1" || p.Items[0].Since == "" {
			t.Fatalf("collection: %+v", p)
		}
		e.expect(400, "GET", "/v1/users/u1/collect?type=Bad", "")
		e.expect(400, "GET", "/v1/users/u1/collect?type=", "") // as every empty parameter
		e.expect(400, "GET", "/v1/users/u1/collect?limit=x", "")
		e.expect(404, "GET", "/v1/users/u1/follow", "")
	})
	t.Run("MinPosition", func(t *testing.T) {
		e.expect(200, "GET", fmt.Sprintf("/v1/targets/article/a-1?min_position=%d", last.Position), "")
		e.expect(200, "GET", "/v1/targets/article/a-1", "", "Ledger-Min-Position", fmt.Sprint(last.Position))
		e.expect(400, "GET", "/v1/targets/article/a-1?min_position=-1", "")
		e.expect(400, "GET", "/v1/targets/article/a-1?min_position=9223372036854775808", "")
		p := mustDecode[Problem](t, e.expect(400, "GET", "/v1/targets/article/a-1", "", "Ledger-Min-Position", "soon"))
		if len(p.InvalidParams) != 1 || !strings.Contains(p.InvalidParams[0].Reason, `"soon"`) {
			t.Errorf("Ledger-Min-Position: soon: %+v, want the value quoted", p.InvalidParams)
		}
		p = mustDecode[Problem](t, e.expect(400, "PUT", "/v1/targets/article/a-1/like/u1", "", "If-Match", "v1"))
		if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "If-Match" || !strings.Contains(p.InvalidParams[0].Reason, `"v1"`) {
			t.Errorf("If-Match: v1: %+v, want the value quoted", p.InvalidParams)
		}
		e.expect(400, "GET", "/v1/targets/article/a-1?viewer=bad%20user", "")
	})
}

func TestConsistencyTimeout(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	res, b := e.quickOver(20*time.Millisecond, stuckRead{e.set}).do("GET", "/v1/targets/article/a-1?min_position=1", "")
	if res.StatusCode != 503 || res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "not-caught-up") {
		t.Fatalf("a read model behind the log: %d, Retry-After %q: %s", res.StatusCode, res.Header.Get("Retry-After"), b)
	}
}

// TestReadBeyondTheLogsHead: a read asking for a position its log does not
// hold (a session position of before a restore of an older copy, which
// keeps the log's identity) waited for the consistency timeout and
// answered 503 Retry-After, so a client retried until the restored log
// happened to grow past it. Once the wait times out and the head is below
// the position, it is 412 position-beyond-log, naming both.
func TestReadBeyondTheLogsHead(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	q := e.quick(20 * time.Millisecond)
	for _, path := range []string{"/v1/targets/article/a-1?min_position=1000", "/v1/targets?t=article/a-1&min_position=1000",
		"/v1/targets/article/a-1/like?min_position=1000", "/v1/users/u1/like?min_position=1000", "/v1/events?min_position=1000"} {
		b := q.expect(412, "GET", path, "")
		if p := mustDecode[Problem](t, b); p.Type != "urn:ledger:problem:position-beyond-log" || p.Head == nil || *p.Head != 1 ||
			!strings.Contains(p.Detail, "position 1000 is beyond this log's head 1") {
			t.Errorf("GET %s: %s, want position-beyond-log naming 1000 and the head 1", path, b)
		}
	}
	q.expect(412, "GET", "/v1/targets/article/a-1", "", "Ledger-Min-Position", "1000")
	q.expect(200, "GET", "/v1/targets/article/a-1?min_position=1", "")
}

// A stream resumed beyond the log's head (another log's id, a forged one,
// one of before a restore of an older copy) waits like min_position, then
// 412 position-beyond-log: it used to stream from there, skipping every
// event up to it while its heartbeats carried the id.
func TestStreamResumeBeyondHead(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	q := e.quick(20 * time.Millisecond)
	b := q.expect(412, "GET", "/v1/events/stream?after=100", "", "Accept", "text/event-stream")
	if !strings.Contains(string(b), "position 100 is beyond this log's head 1") {
		t.Errorf("detail does not name the position and the head: %s", b)
	}
	q.expect(412, "GET", "/v1/events/stream", "", "Accept", "text/event-stream", "Last-Event-ID", "100")
	e.expect(200, "HEAD", "/v1/events/stream?after=1", "", "Accept", "text/event-stream")
}

// Nodes configured with the same kinds in another order tag the same
// bodies alike: the bodies' maps are sorted, so are the ETags' kinds; other
// kinds, or another log, tag them otherwise.
func TestETagKindsOrder(t *testing.T) {
	const log, other = "0193a4f2-7c1e-7a3b-9e4d-5f6a7b8c9d0e", "0193a4f2-7c1e-7a3b-9e4d-5f6a7b8c9d0f"
	if a, b := representationTag(domain.MustKindSet("like", "collect"), log), representationTag(domain.MustKindSet("collect", "like"), log); a != b {
		t.Errorf("tag %s for like,collect, %s for collect,like", a, b)
	}
	if a, b := representationTag(domain.MustKindSet("like"), log), representationTag(domain.MustKindSet("like", "collect"), log); a == b {
		t.Errorf("tag %s for like and for like,collect", a)
	}
	if a, b := representationTag(domain.MustKindSet("like"), log), representationTag(domain.MustKindSet("like"), other); a == b {
		t.Errorf("tag %s for two logs", a)
	}
}

// TestStartGate: until the read model has applied the log head of the
// process's start, reads answer 503; once it has, they answer.
func TestStartGate(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.StartPosition = 3; c.ConsistencyTimeout = 20 * time.Millisecond })
	e.expect(503, "GET", "/v1/targets/article/a-1", "")
	e.expect(503, "GET", "/v1/users/u1/like", "")
	ledger := domain.NewLedger(e.store, e.srv.cfg.Kinds, domain.LedgerConfig{}, nil)
	for i := range 3 {
		target, _ := domain.NewTarget("article", fmt.Sprintf("g-%d", i))
		user, _ := domain.NewUserID("u1")
		like, _ := domain.ParseKind("like")
		if _, err := ledger.Set(t.Context(), domain.SetRequest{User: user, Target: target, Kind: like, On: true}); err != nil {
			t.Fatal(err)
		}
	}
	// The test's applier may take longer than the 20 ms a read waits for it
	// (under load it did): the gate must be open once position 3 is applied.
	if err := e.set.WaitFor(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	e.expect(200, "GET", "/v1/targets/article/a-1?min_position=3", "", "Ledger-Min-Position", "3")
}

func TestHistory(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	e.expect(200, "PUT", "/v1/targets/video/v-1/collect/u2", "")
	e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", "")
	t.Run("JSON", func(t *testing.T) {
		h := mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events", ""))
		if len(h.Items) != 3 || h.NextAfter != 3 || h.Items[2].Type != "interaction.cancelled" {
			t.Fatalf("history: %+v", h)
		}
		h = mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?after=1&limit=1", "", "Accept", "application/json"))
		if len(h.Items) != 1 || h.Items[0].Position != 2 || h.NextAfter != 2 {
			t.Fatalf("page: %+v", h)
		}
		h = mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?user=u1&kind=like&target_type=article&target_id=a-1", ""))
		if len(h.Items) != 2 {
			t.Fatalf("filtered: %+v", h)
		}
		h = mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?after=3", ""))
		if len(h.Items) != 0 || h.NextAfter != 3 {
			t.Fatalf("empty page: %+v", h)
		}
	})
	t.Run("NDJSON", func(t *testing.T) {
		res, b := e.do("GET", "/v1/events?after=1", "", "Accept", "application/x-ndjson")
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/x-ndjson") || len(lines) != 2 {
			t.Fatalf("ndjson %d %q", res.StatusCode, b)
		}
		ev, err := eventcodec.UnmarshalEvent([]byte(lines[0]))
		if err != nil || ev.Position != 2 {
			t.Fatalf("ndjson line: %v %+v", err, ev)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		res, b := e.do("GET", "/v1/events", "", "Accept", "text/csv")
		rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if res.StatusCode != 200 || err != nil || len(rows) != 4 || rows[0][0] != "position" || rows[3][2] != "interaction.cancelled" {
			t.Fatalf("csv %d %v %q", res.StatusCode, err, b)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		e.expect(406, "GET", "/v1/events", "", "Accept", "application/xml")
		e.expect(400, "GET", "/v1/events?limit=10001", "")
		e.expect(400, "GET", "/v1/events?after=x", "")
		e.expect(400, "GET", "/v1/events?since=yesterday", "")
		e.expect(400, "GET", "/v1/events?target_id=a-1", "")
		e.expect(400, "GET", "/v1/events?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "")
		e.expect(404, "GET", "/v1/events?kind=follow", "")
		e.expect(200, "GET", "/v1/events?limit=20000", "", "Accept", "application/x-ndjson")
	})
	t.Run("ErrorsName", func(t *testing.T) {
		for query, want := range map[string]InvalidParam{
			"target_type=article&target_id=":                        {Name: "target_id"},
			"target_type=Article&target_id=a-1":                     {Name: "target_type"},
			"limit=abc":                                             {Name: "limit", Reason: `"abc"`},
			"since=2026-01-01T00:00:00 01:00":                       {Name: "since", Reason: `"2026-01-01T00:00:00 01:00"`},
			"since=2001-01-01T00:00:00Z&until=2000-01-01T00:00:00Z": {Name: "until", Reason: "2000-01-01T00:00:00Z"},
			// Go's parser took these, which RFC 3339 does not: a day's offset, 60 minutes, a comma.
			"since=2026-01-01T00:00:00%2B24:00": {Name: "since", Reason: `"2026-01-01T00:00:00+24:00" has an offset beyond`},
			"until=2026-01-01T00:00:00-12:60":   {Name: "until", Reason: `"2026-01-01T00:00:00-12:60" has an offset beyond`},
			"since=2026-01-01T00:00:00,5Z":      {Name: "since", Reason: `"2026-01-01T00:00:00,5Z" is not an RFC 3339 time`},
			"until=2016-12-31T23:59:60Z":        {Name: "until", Reason: `"2016-12-31T23:59:60Z" is a leap second`},
		} {
			p := mustDecode[Problem](t, e.expect(400, "GET", "/v1/events?"+strings.ReplaceAll(query, " ", "%20"), ""))
			if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != want.Name || !strings.Contains(p.InvalidParams[0].Reason, want.Reason) {
				t.Errorf("%s: %+v, want %s naming %s", query, p.InvalidParams, want.Name, want.Reason)
			}
		}
	})
	t.Run("TimesBeyondTheLog", func(t *testing.T) {
		// The log keeps times as int64 nanoseconds (1677..2262); bounds
		// beyond select as the bounds themselves, not as overflowed ones.
		for query, want := range map[string]int{
			"until=3000-01-01T00:00:00Z":                            3,
			"until=9999-12-31T23:59:59Z":                            3,
			"since=2300-01-01T00:00:00Z":                            0,
			"since=0001-01-01T00:00:00Z":                            3,
			"until=0001-01-01T00:00:00Z":                            0,
			"since=1000-01-01T00:00:00Z&until=3000-01-01T00:00:00Z": 3,
		} {
			h := mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?"+query, ""))
			if len(h.Items) != want {
				t.Errorf("%s: %d events, want %d", query, len(h.Items), want)
			}
		}
	})
	t.Run("HeadAsGet", func(t *testing.T) {
		for _, media := range []string{"application/json", "text/csv", "application/x-ndjson"} {
			get, _ := e.do("GET", "/v1/events?limit=1", "", "Accept", media)
			head, _ := e.do("HEAD", "/v1/events?limit=1", "", "Accept", media)
			if ct := get.Header.Get("Content-Type"); head.StatusCode != 200 || head.Header.Get("Content-Type") != ct {
				t.Errorf("%s: HEAD %d Content-Type %q, GET %q", media, head.StatusCode, head.Header.Get("Content-Type"), ct)
			}
		}
	})
}

func TestStream(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Heartbeat = 10 * time.Millisecond })
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u2", "")
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.http.URL+"/v1/events/stream", nil)
	req.Header.Set("Last-Event-ID", "1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %v", res.StatusCode, res.Header)
	}
	rd := bufio.NewReader(res.Body)
	first := readSSE(t, rd)
	if first.id != "2" || first.event != "interaction.added" || first.data.Counts["like"] != 2 || first.data.User != "u2" {
		t.Fatalf("backfill: %+v", first)
	}
	e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", "")
	live := readSSE(t, rd)
	if live.id != "3" || live.event != "interaction.cancelled" || live.data.Counts["like"] != 1 {
		t.Fatalf("live: %+v", live)
	}
	if !live.sawComment {
		readUntilComment(t, rd)
	}
	fromNow, err := http.DefaultClient.Do(mustRequest(t, e.http.URL+"/v1/events/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer fromNow.Body.Close()
	nowRd := bufio.NewReader(fromNow.Body)
	readUntilComment(t, nowRd)
	e.expect(200, "PUT", "/v1/targets/article/a-2/collect/u1", "")
	if ev := readSSE(t, nowRd); ev.id != "4" {
		t.Fatalf("stream without after: first event %+v, want the live one", ev)
	}
	e.expect(406, "GET", "/v1/events/stream", "", "Accept", "application/json")
	e.expect(400, "GET", "/v1/events/stream", "", "Last-Event-ID", "abc")
}

type sseEvent struct {
	id, event  string
	data       sseData
	sawComment bool
}

type sseData struct {
	eventcodec.EventJSON
	Counts map[string]int64 `json:"counts"`
}

// readSSE reads lines up to the next event, skipping comments, retry and
// frames that carry only an id.
func readSSE(t *testing.T, rd *bufio.Reader) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, ":"):
			ev.sawComment = true
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			var raw map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line[6:]), &raw); err != nil {
				t.Fatalf("data: %v", err)
			}
			_ = json.Unmarshal(raw["counts"], &ev.data.Counts)
			_ = json.Unmarshal([]byte(line[6:]), &ev.data.EventJSON)
		case line == "" && ev.event != "":
			return ev
		case line == "":
			// A frame without an event (the opening frame, a heartbeat)
			// only moves the resume point.
			ev = sseEvent{sawComment: ev.sawComment}
		}
	}
}

func readUntilComment(t *testing.T, rd *bufio.Reader) {
	t.Helper()
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		if strings.HasPrefix(line, ": heartbeat") {
			return
		}
	}
}

func TestOps(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	e.expect(200, "GET", "/healthz", "")
	e.expect(200, "GET", "/readyz", "")
	m := string(e.expect(200, "GET", "/metrics", ""))
	for _, want := range []string{
		`ledger_http_requests_total{code="200",route="PUT /v1/targets/{type}/{id}/{kind}/{user}"} 1`,
		"ledger_projection_applied_position 1", "ledger_projection_lag_events 0", "ledger_sse_clients 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	var doc map[string]any
	if err := json.Unmarshal(e.expect(200, "GET", "/openapi.json", ""), &doc); err != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("openapi: %v %v", err, doc["openapi"])
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestHistoryPollMovesPastUnmatchedEvents: a filtered poll's last page
// gave next_after as its last match (or the after it was sent), so a
// client polling with a filter scanned every event since its last match
// again at each poll. A last page now moves next_after to the log's head
// read before the page, which its scan covered; a full page keeps its last
// event's position.
func TestHistoryPollMovesPastUnmatchedEvents(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	e.expect(200, "PUT", "/v1/targets/article/a-2/like/u2", "")
	e.expect(200, "PUT", "/v1/targets/article/a-3/like/u3", "")
	next := func(query string, items int) int64 {
		t.Helper()
		h := mustDecode[historyResponse](t, e.expect(200, "GET", "/v1/events?"+query, ""))
		if len(h.Items) != items {
			t.Fatalf("GET /v1/events?%s: %d events, want %d: %+v", query, len(h.Items), items, h)
		}
		return h.NextAfter
	}
	if n := next("user=u1", 1); n != 3 {
		t.Errorf("a filtered last page: next_after %d, want the head 3", n)
	}
	if n := next("user=u1&after=3", 0); n != 3 {
		t.Errorf("an empty last page: next_after %d, want 3", n)
	}
	if n := next("limit=1", 1); n != 1 {
		t.Errorf("a full page: next_after %d, want its last event 1", n)
	}
	// A poll after the head (a position of before a restore of an older
	// copy) would skip the restored log's next events: refused, naming the
	// head, in every form.
	for _, accept := range []string{"application/json", "text/csv", "application/x-ndjson"} {
		b := e.expect(412, "GET", "/v1/events?after=7", "", "Accept", accept)
		if p := mustDecode[Problem](t, b); p.Type != "urn:ledger:problem:position-beyond-log" || p.Head == nil || *p.Head != 3 ||
			!strings.Contains(p.Detail, "after 7 is beyond this log's head 3") {
			t.Errorf("%s after the head: %s, want position-beyond-log with head 3", accept, b)
		}
	}
	e.expect(200, "PUT", "/v1/targets/article/a-4/like/u1", "")
	if n := next("user=u1&after=3", 1); n != 4 {
		t.Errorf("the poll after a new match: next_after %d, want 4", n)
	}
}

// TestHistoryHeadAfterBeyondHead: HEAD /v1/events answered 200 to an
// after beyond the log's head, which GET refuses with 412
// position-beyond-log: HEAD answers as GET would, without the body.
func TestHistoryHeadAfterBeyondHead(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	for _, accept := range []string{"application/json", "text/csv", "application/x-ndjson"} {
		if res, _ := e.do("HEAD", "/v1/events?after=7", "", "Accept", accept); res.StatusCode != 412 {
			t.Errorf("%s: HEAD after the head %d, want 412 as GET", accept, res.StatusCode)
		}
		e.expect(200, "HEAD", "/v1/events?after=1", "", "Accept", accept)
	}
}

// TestHistoryAndStreamWhenTheHeadIsNotRead: a database that stopped
// answering (a network that drops its packets, a frozen server) held
// GET /v1/events and the opening of a live stream for as long as it did
// (60 s in a chaos run through a proxy that stalled a node's connections),
// since both read the log's head with the request's context alone. They
// wait for it as long as a read waits for the read model, then 503.
func TestHistoryAndStreamWhenTheHeadIsNotRead(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	cfg := e.srv.cfg
	cfg.ConsistencyTimeout = 50 * time.Millisecond
	stalled := e.serving(e.sideServer(cfg, nil, stalledLog{e.store}, nil))
	for _, path := range []string{"/v1/events", "/v1/events?after=0", "/v1/events/stream"} {
		var p Problem
		if err := json.Unmarshal(stalled.expect(503, "GET", path, ""), &p); err != nil || p.Type != "urn:ledger:problem:store-unavailable" {
			t.Errorf("%s: problem %+v (%v), want store-unavailable", path, p, err)
		} else if !strings.Contains(p.Detail, "cannot be read right now") || !strings.Contains(p.Detail, "the log's head was not read within 50ms") {
			t.Errorf("%s: detail %q, want a read refused and the head's wait named (it said the store cannot accept writes)", path, p.Detail)
		}
	}
}

// stalledLog is a log whose database stopped answering: reading its head
// waits until the context ends, and a context that never ends is refused
// (the read would wait for ever).
type stalledLog struct{ Log }

func (stalledLog) LastPosition(ctx context.Context) (int64, error) {
	if _, ok := ctx.Deadline(); !ok {
		return 0, errors.New("the head read has no deadline: it waits for the database for ever")
	}
	<-ctx.Done()
	return 0, ctx.Err()
}

// TestHistoryCSVContinuation: a CSV page that does not hold every matching
// event says where the next starts (Link rel="next", same filters), and
// the last page says nothing.
func TestHistoryCSVContinuation(t *testing.T) {
	e := MustEnv(t, nil)
	for i := range 5 {
		e.expect(200, "PUT", fmt.Sprintf("/v1/targets/article/a-%d/like/u1", i), "")
	}
	e.expect(200, "PUT", "/v1/targets/video/v-1/like/u1", "")
	next := "/v1/events?limit=2&target_type=article"
	var ids []string
	pages := 0
	for next != "" {
		res, b := e.do("GET", next, "", "Accept", "text/csv")
		rows, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
		if res.StatusCode != 200 || err != nil || len(rows) < 2 {
			t.Fatalf("%s: %d %v %q", next, res.StatusCode, err, b)
		}
		for _, r := range rows[1:] {
			ids = append(ids, r[6])
		}
		next = nextLink(t, res.Header.Get("Link"))
		if next != "" && (!strings.Contains(next, "limit=2") || !strings.Contains(next, "target_type=article")) {
			t.Fatalf("next link %q lost the filters", next)
		}
		pages++
	}
	if pages != 3 || strings.Join(ids, ",") != "a-0,a-1,a-2,a-3,a-4" {
		t.Fatalf("%d pages, ids %v", pages, ids)
	}
	res, _ := e.do("GET", "/v1/events?limit=6", "", "Accept", "text/csv")
	if l := res.Header.Get("Link"); l != "" {
		t.Fatalf("a page with every event has Link %q", l)
	}
}

// nextLink returns the target of a Link header's rel="next", or "".
func nextLink(t *testing.T, h string) string {
	t.Helper()
	if h == "" {
		return ""
	}
	ref, params, ok := strings.Cut(h, ";")
	if !ok || strings.TrimSpace(params) != `rel="next"` || !strings.HasPrefix(ref, "<") || !strings.HasSuffix(ref, ">") {
		t.Fatalf("Link %q", h)
	}
	return strings.Trim(ref, "<>")
}

// TestClientGoneIsNotAServerError: a request whose client hangs up while
// it waits (here for a min_position the read model never reaches) is
// recorded as 499, not as a 503 of the server, and logs no failure.
func TestClientGoneIsNotAServerError(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.ConsistencyTimeout, c.WriteTimeout = time.Minute, 2*time.Minute })
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.http.URL+"/v1/targets/article/a-1?min_position=1000000", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the request was answered (%d) instead of waiting", res.StatusCode)
	}
	want := `ledger_http_requests_total{code="499",route="GET /v1/targets/{type}/{id}"} 1`
	deadline := time.Now().Add(5 * time.Second)
	for m := ""; !strings.Contains(m, want); m = string(e.expect(200, "GET", "/metrics", "")) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", want, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if logs := e.logs.String(); strings.Contains(logs, "request failed") || strings.Contains(logs, "status=503") {
		t.Fatalf("a client hanging up was logged as a failure:\n%s", logs)
	}
}

// TestLedgerLog: every answer names the log (Ledger-Log); a request that
// names another log (a client's positions, versions or ETags from before
// the log was created anew) is refused with 412 other-log before anything
// reads them, on reads, writes and the stream alike; the same log, or
// none, is served; a malformed name is 400.
func TestLedgerLog(t *testing.T) {
	e := MustEnv(t, nil)
	log := e.store.LogID()
	res, _ := e.do("PUT", "/v1/targets/article/a-1/like/u1", "")
	if got := res.Header.Get("Ledger-Log"); got != log {
		t.Fatalf("Ledger-Log %q, want the store's %q", got, log)
	}
	other := uuid.Must(uuid.NewV7()).String()
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/targets/article/a-1?min_position=1"},
		{"GET", "/v1/targets?t=article/a-1"},
		{"GET", "/v1/targets/article/a-1/like"},
		{"GET", "/v1/events"},
		{"PUT", "/v1/targets/article/a-1/like/u2"},
		{"DELETE", "/v1/targets/article/a-1/like/u1"},
	} {
		b := e.expect(412, c.method, c.path, "", "Ledger-Log", other)
		if p := mustDecode[Problem](t, b); p.Type != "urn:ledger:problem:other-log" || !strings.Contains(p.Detail, other) || !strings.Contains(p.Detail, log) {
			t.Fatalf("%s %s of another log: %s", c.method, c.path, b)
		}
		sep := "?"
		if strings.Contains(c.path, "?") {
			sep = "&"
		}
		e.expect(412, c.method, c.path+sep+"log="+other, "")
	}
	e.expect(412, "GET", "/v1/events/stream?after=0", "", "Accept", "text/event-stream", "Ledger-Log", other)
	if b := e.expect(200, "GET", "/v1/targets/article/a-1?viewer=u1", "", "Ledger-Log", strings.ToUpper(log)); !strings.Contains(string(b), `"like":true`) {
		t.Fatalf("the same log: %s", b)
	}
	e.expect(200, "GET", "/v1/targets/article/a-1?log="+log, "")
	if snapshot := e.mustCount(); snapshot != 1 {
		t.Fatalf("the log holds %d events after the refused writes, want 1", snapshot)
	}
	e.expect(412, "GET", "/v1/targets/article/a-1?lo%67="+other, "")
	e.expect(200, "GET", "/v1/targets/article/a-1", "", "Ledger-Log", "")
	e.expect(400, "GET", "/v1/targets/article/a-1", "", "Ledger-Log", "not-a-uuid")
	e.expect(400, "GET", "/v1/targets/article/a-1?log="+log, "", "Ledger-Log", log)
	e.expect(400, "GET", "/v1/targets/article/a-1?log="+log+"&log="+log, "")
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, newRequest("GET", "/healthz", nil))
	if rec.Header().Get("Ledger-Log") != log {
		t.Fatalf("/healthz: Ledger-Log %q", rec.Header().Get("Ledger-Log"))
	}
}

// mustCount is the number of events in the log.
func (e *testEnv) mustCount() int64 {
	e.t.Helper()
	n, err := e.store.LastPosition(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestNosniffEverywhere: problems echo input (a path, an id, a header), and
// a browser that sniffs a body instead of trusting its Content-Type could
// take JSON holding "<script>" for HTML; every answer says not to.
func TestNosniffEverywhere(t *testing.T) {
	e := MustEnv(t, nil)
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/targets/article/a-1"},
		{"PUT", "/v1/targets/article/a-1/like/u1"},
		{"GET", "/v1/targets/article/%3Cscript%3E"},
		{"GET", "/%3Cscript%3Ealert(1)%3C%2Fscript%3E"},
		{"POST", "/v1/targets/article/a-1"},
		{"GET", "/v1/events"},
		{"GET", "/healthz"},
		{"GET", "/metrics"},
		{"GET", "/openapi.json"},
	} {
		res, _ := e.do(c.method, c.path, "")
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: %d with X-Content-Type-Options %q, want nosniff", c.method, c.path, res.StatusCode, got)
		}
	}
}

// TestNotAcceptableClipsThePath: a 406 is decided before the path's ids
// are checked, so the path it names may be anything up to the header
// limit; the problem echoes it bounded, as every other problem does.
func TestNotAcceptableClipsThePath(t *testing.T) {
	e := MustEnv(t, nil)
	long := "/v1/targets/article/" + strings.Repeat("a", 5000) + "/like/u1"
	for _, method := range []string{"PUT", "GET"} {
		path := long
		if method == "GET" {
			path = strings.TrimSuffix(long, "/u1")
		}
		p := mustDecode[Problem](t, e.expect(406, method, path, "", "Accept", "text/html"))
		if len(p.Detail) > 300 {
			t.Errorf("%s: a %d-byte detail", method, len(p.Detail))
		}
	}
}

// TestWriteOnABadStoredState: a write to a stream whose stored state does
// not decode (another program wrote it) is the log's fault, answered 503
// store-unavailable. It was answered 400 invalid-input, as if the client
// had sent a bad request: the store's error wrapped the decoding's
// *domain.ValidationError, which problemFor maps first.
func TestWriteOnABadStoredState(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	db := sqlitetest.DB(t, strings.TrimSuffix(e.views, ".views"))
	if _, err := db.Exec(`UPDATE streams SET state = 'Not A Kind'`); err != nil {
		t.Fatal(err)
	}
	var p Problem
	if err := json.Unmarshal(e.expect(503, "PUT", "/v1/targets/article/a-1/collect/u1", ""), &p); err != nil || p.Type != "urn:ledger:problem:store-unavailable" {
		t.Fatalf("problem %+v (%v), want store-unavailable", p, err)
	}
}

// TestHistoryOfAnUnreadableRow: a row whose id is not 16 bytes, or whose
// column holds a value of another type (SQLite stores what it is given),
// answered the history 500, the answer of a bug; like any event the log
// cannot decode, it is the store's fault, 503.
func TestHistoryOfAnUnreadableRow(t *testing.T) {
	for _, set := range []string{`id = x'0011'`, `occurred_at = 'soon'`} {
		e := MustEnv(t, nil)
		e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
		db := sqlitetest.DB(t, strings.TrimSuffix(e.views, ".views"))
		if _, err := db.Exec(`UPDATE events SET ` + set); err != nil {
			t.Fatal(err)
		}
		var p Problem
		if err := json.Unmarshal(e.expect(503, "GET", "/v1/events", ""), &p); err != nil || p.Type != "urn:ledger:problem:store-unavailable" {
			t.Errorf("%s: problem %+v (%v), want store-unavailable", set, p, err)
		}
	}
}

// TestHistoryOfABadEvent: an event the log cannot decode answered the
// history 400 invalid-input, naming its column as if the client had sent
// it as a query parameter; it is the store's fault, 503.
func TestHistoryOfABadEvent(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	db := sqlitetest.DB(t, strings.TrimSuffix(e.views, ".views"))
	if _, err := db.Exec(`UPDATE events SET kind = 'Not A Kind'`); err != nil {
		t.Fatal(err)
	}
	var p Problem
	if err := json.Unmarshal(e.expect(503, "GET", "/v1/events", ""), &p); err != nil || p.Type != "urn:ledger:problem:store-unavailable" {
		t.Fatalf("problem %+v (%v), want store-unavailable", p, err)
	}
	// The detail names the value, for the operator: it said only that
	// the store "cannot accept writes right now", of a read.
	if !strings.Contains(p.Detail, "event 1: stored kind") || strings.Contains(p.Detail, "writes") {
		t.Errorf("detail %q, want the stored value named, and no word of writes", p.Detail)
	}
}

// TestUnknownQueryParameterRefused: a query parameter a route does not
// take is 400 naming it, on every route of the API, rather than ignored:
// a misspelt min_position would make a read that may be older than the
// client's own write look like one that waited for it.
func TestUnknownQueryParameterRefused(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	for _, path := range []string{
		"/v1/targets/article/a-1?min_postion=1",
		"/v1/targets?t=article/a-1&min_postion=1",
		"/v1/targets/article/a-1/like?min_postion=1",
		"/v1/users/u1/like?min_postion=1",
		"/v1/events?min_postion=1",
		"/v1/events/stream?min_postion=1",
	} {
		p := mustDecode[Problem](t, e.expect(400, "GET", path, "", "Accept", "*/*"))
		if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "min_postion" || !strings.Contains(p.InvalidParams[0].Reason, "min_position") {
			t.Errorf("GET %s: %+v, want min_postion refused, naming the ones taken", path, p.InvalidParams)
		}
	}
	for _, method := range []string{"PUT", "DELETE"} {
		p := mustDecode[Problem](t, e.expect(400, method, "/v1/targets/article/a-1/like/u1?dry_run=1", ""))
		if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "dry_run" {
			t.Errorf("%s with dry_run: %+v", method, p.InvalidParams)
		}
	}
	// Every unknown name is reported with the other problems, in order.
	p := mustDecode[Problem](t, e.expect(400, "GET", "/v1/targets/article/a-1/like?z=1&limit=0&a=2", ""))
	var names []string
	for _, ip := range p.InvalidParams {
		names = append(names, ip.Name)
	}
	if strings.Join(names, ",") != "a,z,limit" {
		t.Errorf("invalid_params %v, want a, z, limit", names)
	}
	// What a route takes (and log, everywhere) is not refused.
	e.expect(200, "GET", "/v1/targets/article/a-1?viewer=u1&min_position=1&log=", "")
	e.expect(200, "HEAD", "/v1/events?after=0&kind=like&user=u1", "")
}

// TestCursorOnANodeBehind: page 2 of a list sent to a node whose read model
// is behind the one that answered page 1 (a cluster's load balancer may
// send it anywhere) waits for the state page 1 was read at, like
// min_position. It was read at once: u, on page 1 after re-liking, was on
// page 2 as well, at the position of its first like, which that node had
// not yet seen cancelled.
func TestCursorOnANodeBehind(t *testing.T) {
	e := MustEnv(t, nil)
	for _, u := range []string{"u", "a", "b", "c", "d"} {
		e.expect(200, "PUT", "/v1/targets/article/a-1/like/"+u, "")
	}
	behind, err := projections.Open(t.Context(), projections.Config{Path: filepath.Join(t.TempDir(), "behind.views"), Kinds: e.srv.cfg.Kinds}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	feed := func(after int64) {
		batch, err := domain.AppendEvents(nil, e.store.ReadEvents(t.Context(), domain.EventFilter{After: after, Limit: 100}))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range behind.Names() {
			if err := behind.Apply(t.Context(), name, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	feed(0)
	e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u", "")
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u", "")
	p1 := mustDecode[pageResponse[actorJSON]](t, e.expect(200, "GET", "/v1/targets/article/a-1/like?limit=2", ""))
	if len(p1.Items) != 2 || p1.Items[0].User != "u" || p1.Items[1].User != "d" || p1.NextCursor == "" {
		t.Fatalf("page 1: %+v", p1)
	}
	page2 := "/v1/targets/article/a-1/like?limit=10&cursor=" + p1.NextCursor
	node := e.quickOver(50*time.Millisecond, behind)
	if res, body := node.do("GET", page2, ""); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("page 2 on a node behind page 1's: %d %s, want 503 not-caught-up", res.StatusCode, body)
	}
	feed(5)
	p2 := mustDecode[pageResponse[actorJSON]](t, node.expect(200, "GET", page2, ""))
	if fmt.Sprint(p2.Items) != fmt.Sprint(mustDecode[pageResponse[actorJSON]](t, e.expect(200, "GET", page2, "")).Items) || len(p2.Items) != 3 {
		t.Fatalf("page 2 once the node caught up: %+v", p2)
	}
}

// TestPreconditionFailedNamesTheStream: a write refused by If-Match learns
// the stream's version and its last event's position from the 412, so it
// can read the state it lost to (min_position) and try again at that
// version; before, the 412 said only that the version had moved, and a
// client without the history (a JWT user) had no way to learn the new one.
func TestPreconditionFailedNamesTheStream(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v0"`)
	won := mustDecode[writeResponse](t, e.expect(200, "DELETE", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v1"`))
	lost := mustDecode[map[string]any](t, e.expect(412, "PUT", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v1"`))
	if lost["stream_version"] != float64(won.StreamVersion) || lost["position"] != float64(won.Position) {
		t.Fatalf("412 %v: want stream_version %d and position %d, the stream as the refused write found it", lost, won.StreamVersion, won.Position)
	}
	empty := mustDecode[map[string]any](t, e.expect(412, "PUT", "/v1/targets/article/v-2/like/u3", "", "If-Match", `"v4"`))
	if v, ok := empty["stream_version"]; !ok || v != float64(0) {
		t.Fatalf("412 on an empty stream %v: want stream_version 0", empty)
	}
	again := mustDecode[writeResponse](t, e.expect(200, "PUT", "/v1/targets/article/v-1/like/u3", "", "If-Match", fmt.Sprintf(`"v%v"`, lost["stream_version"])))
	if !again.Changed || again.StreamVersion != won.StreamVersion+1 {
		t.Fatalf("retry at the 412's version: %+v", again)
	}
}

// TestIfMatchOneSpelling: If-Match "v01" matched the stream at version 1,
// though the entity tag of that version is "v1" and "v01" no tag the
// server gives (RFC 9110 compares entity tags as strings); a version with
// leading zeros is refused like any other malformed tag.
func TestIfMatchOneSpelling(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(400, "PUT", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v00"`)
	e.expect(200, "PUT", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v0"`)
	p := mustDecode[Problem](t, e.expect(400, "DELETE", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v01"`))
	if len(p.InvalidParams) != 1 || p.InvalidParams[0].Name != "If-Match" || !strings.Contains(p.InvalidParams[0].Reason, "v01") {
		t.Errorf("If-Match \"v01\": %+v, want it named", p.InvalidParams)
	}
	e.expect(200, "DELETE", "/v1/targets/article/v-1/like/u3", "", "If-Match", `"v1"`)
}

// TestIfMatchOfAnotherLog pins that an If-Match is compared only within
// its log: a stream of another log (the server's log created anew) at the
// same version has the same tag, "v1", and a write naming that other log
// (Ledger-Log, as the project's client sends on every request) is refused
// with 412 other-log before the version is compared, appending nothing;
// naming this log, the same tag is the stream's and the write goes on.
func TestIfMatchOfAnotherLog(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "")
	other := uuid.Must(uuid.NewV7()).String()
	b := e.expect(412, "DELETE", "/v1/targets/article/a-1/like/u1", "", "If-Match", `"v1"`, "Ledger-Log", other)
	if p := mustDecode[Problem](t, b); p.Type != "urn:ledger:problem:other-log" {
		t.Fatalf("a write with an If-Match of another log: %s, want 412 other-log", b)
	}
	if n := e.mustCount(); n != 1 {
		t.Fatalf("the refused write appended: %d events, want 1", n)
	}
	e.expect(200, "DELETE", "/v1/targets/article/a-1/like/u1", "", "If-Match", `"v1"`, "Ledger-Log", e.store.LogID())
}
