package baseline_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/interactionledger/ledger/cmd/ledger/internal/baseline"
	"github.com/interactionledger/ledger/domain"
)

func TestLegacyDesignCounts(t *testing.T) {
	s, err := baseline.Open(context.Background(), filepath.Join(t.TempDir(), "b.db"), domain.MustKindSet("like", "collect"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv := httptest.NewServer(s)
	defer srv.Close()
	do := func(method, path string, want int) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s = %d, want %d", method, path, resp.StatusCode, want)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		return body
	}
	do("PUT", "/v1/targets/article/a1/like/u1", 200)
	do("PUT", "/v1/targets/article/a1/like/u1", 200) // no second row
	do("PUT", "/v1/targets/article/a1/like/u2", 200)
	do("DELETE", "/v1/targets/article/a1/like/u1", 200)
	do("PUT", "/v1/targets/article/a1/like/u1", 200) // liked again: a new row
	body := do("GET", "/v1/targets/article/a1?viewer=u2", 200)
	counts := body["counts"].(map[string]any)
	if counts["like"] != float64(2) || counts["collect"] != float64(0) {
		t.Errorf("counts %v, want like 2 collect 0", counts)
	}
	if v := body["viewer"].(map[string]any); v["like"] != true {
		t.Errorf("viewer %v", v)
	}
	list := do("GET", "/v1/targets/article/a1/like", 200)
	if items := list["items"].([]any); len(items) != 2 || items[0].(map[string]any)["user"] != "u1" {
		t.Errorf("list %v, want u1 (newest) then u2", items)
	}
	batch := do("GET", "/v1/targets?t=article/a1&t=article/none", 200)
	if items := batch["items"].([]any); len(items) != 2 {
		t.Errorf("batch %v", items)
	}
	do("GET", "/v1/targets/article/a%20b", 400)
	do("PUT", "/v1/targets/article/a1/share/u1", 404)
}
