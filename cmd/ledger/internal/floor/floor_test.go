package floor_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/cmd/ledger/internal/floor"
)

// TestFloorAnswersTheWorkload: every request of the bench's workload gets a
// 200 and a JSON body of the ledger's shape, naming what was asked.
func TestFloorAnswersTheWorkload(t *testing.T) {
	h := floor.New()
	get := func(method, path string) map[string]any {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Ledger-Position") == "" {
			t.Fatalf("%s %s = %d %v", method, path, rec.Code, rec.Header())
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, rec.Body)
		}
		return body
	}
	w := get("PUT", "/v1/targets/article/t5/like/u7")
	if w["user"] != "u7" || w["kind"] != "like" || w["active"] != true ||
		!reflect.DeepEqual(w["target"], map[string]any{"type": "article", "id": "t5"}) {
		t.Errorf("write: %v", w)
	}
	if d := get("DELETE", "/v1/targets/video/v1/collect/u2"); d["active"] != false || d["kind"] != "collect" {
		t.Errorf("delete: %v", d)
	}
	one := get("GET", "/v1/targets/article/t9?viewer=u1")
	if _, ok := one["viewer"]; !ok || one["counts"] == nil {
		t.Errorf("target read: %v", one)
	}
	if anon := get("GET", "/v1/targets/article/t9"); anon["viewer"] != nil {
		t.Errorf("target read without a viewer has viewer flags: %v", anon)
	}
	page := get("GET", "/v1/targets?viewer=u1&t=article/t1&t=video/v2&t=article/t3")
	items := page["items"].([]any)
	var ids []string
	for _, it := range items {
		tg := it.(map[string]any)["target"].(map[string]any)
		ids = append(ids, tg["type"].(string)+"/"+tg["id"].(string))
	}
	if strings.Join(ids, " ") != "article/t1 video/v2 article/t3" {
		t.Errorf("feed page targets %v", ids)
	}
	if l := get("GET", "/v1/targets/article/t1/like?limit=50"); len(l["items"].([]any)) != 1 {
		t.Errorf("list: %v", l)
	}
}
