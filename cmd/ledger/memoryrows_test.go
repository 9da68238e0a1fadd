package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeMemoryRows: --memory-rows reaches the projections. Past the
// limit the in-memory copy turns off (and says so); with 0 there is no
// copy; target reads answer the same in every case.
func TestServeMemoryRows(t *testing.T) {
	for _, tc := range []struct {
		rows    string
		wantOff bool
	}{{"", false}, {"0", false}, {"3", true}} {
		t.Run("rows="+tc.rows, func(t *testing.T) {
			var extra []string
			if tc.rows != "" {
				extra = []string{"--memory-rows", tc.rows}
			}
			s := startServe(t, filepath.Join(t.TempDir(), "mem.db"), nil, extra...)
			var last writeBody
			for i := range 4 {
				last = decode[writeBody](t, s.want(t, 200, "PUT", fmt.Sprintf("/v1/targets/article/m1/like/u%d", i), ""))
			}
			path := fmt.Sprintf("/v1/targets/article/m1?viewer=u2&min_position=%d", last.Position)
			got := decode[targetBody](t, s.want(t, 200, "GET", path, ""))
			if got.Counts["like"] != 4 || !got.Viewer["like"] || got.Position < last.Position {
				t.Fatalf("read %+v after 4 likes at %d", got, last.Position)
			}
			off := strings.Contains(s.logs.String(), "in-memory model is off")
			if off != tc.wantOff {
				t.Fatalf("copy turned off: %v, want %v; logs:\n%s", off, tc.wantOff, s.logs)
			}
		})
	}
}
