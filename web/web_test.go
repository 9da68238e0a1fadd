package web

import (
	"io/fs"
	"strings"
	"testing"
)

// TestDemo checks that the embedded build is whole: an index.html whose
// every /assets/ reference is embedded.
func TestDemo(t *testing.T) {
	site := Demo()
	index, err := fs.ReadFile(site, "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	refs := 0
	for _, part := range strings.Split(string(index), `"/assets/`)[1:] {
		name := "assets/" + part[:strings.IndexByte(part, '"')]
		if _, err := fs.Stat(site, name); err != nil {
			t.Errorf("index.html references %s: %v", name, err)
		}
		refs++
	}
	if refs < 2 {
		t.Fatalf("index.html references %d assets, want the script and the style sheet:\n%s", refs, index)
	}
}
