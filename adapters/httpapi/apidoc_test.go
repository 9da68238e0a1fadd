package httpapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// apiDocPath is the repository's HTTP API reference.
const apiDocPath = "../../docs/api.md"

// operationPattern finds "METHOD /path" in the reference (tables, code
// blocks and prose alike); the path ends at a query, a space or a quote.
var operationPattern = regexp.MustCompile(`\b(GET|PUT|DELETE|POST|PATCH|HEAD|OPTIONS) +(/[A-Za-z0-9_./{}-]*)`)

// TestAPIDocAgrees: every operation of the OpenAPI document appears in
// docs/api.md, and every operation docs/api.md names is in the document.
func TestAPIDocAgrees(t *testing.T) {
	md, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatal(err)
	}
	var inDoc []string
	for _, m := range operationPattern.FindAllStringSubmatch(string(md), -1) {
		inDoc = append(inDoc, m[1]+" "+m[2])
	}
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &spec); err != nil {
		t.Fatal(err)
	}
	var inSpec []string
	for path, ops := range spec.Paths {
		for method := range ops {
			inSpec = append(inSpec, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(inDoc)
	inDoc = slices.Compact(inDoc)
	slices.Sort(inSpec)
	if !slices.Equal(inDoc, inSpec) {
		t.Fatalf("docs/api.md and openapi.json name different operations:\ndocs/api.md  %q\nopenapi.json %q", inDoc, inSpec)
	}
}

// problemSlugPattern finds the problem slugs the package's code answers
// with: httpError literals and newProblem calls.
var problemSlugPattern = regexp.MustCompile(`(?:slug: |newProblem\([0-9]+, )"([a-z-]+)"`)

// TestAPIDocNamesProblemTypes: every problem type the server answers with
// (but "internal", a 500, which is a bug) is named in docs/api.md's
// Errors section, so a client knows every type it may meet.
func TestAPIDocNamesProblemTypes(t *testing.T) {
	md, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatal(err)
	}
	_, errorsSection, ok := strings.Cut(string(md), "\n## Errors\n")
	if !ok {
		t.Fatal("docs/api.md has no Errors section")
	}
	errorsSection, _, _ = strings.Cut(errorsSection, "\n## ")
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range problemSlugPattern.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d problem slugs in the code: the pattern no longer matches it", len(seen))
	}
	for slug := range seen {
		if slug != "internal" && !strings.Contains(errorsSection, "`"+slug+"`") {
			t.Errorf("the server answers urn:ledger:problem:%s, which docs/api.md's Errors section does not name", slug)
		}
	}
}

// TestAPIDocStatesRequestID: docs/api.md gives the form of an X-Request-ID
// the server keeps (any other is replaced, silently) and says that every
// answer carries the request's id, so a client can correlate its requests
// with the server's log and the events' request_id.
func TestAPIDocStatesRequestID(t *testing.T) {
	md, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{requestIDPattern.String(), "Every answer carries `X-Request-ID`"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("docs/api.md does not say %q", want)
		}
	}
}

// TestAPIDocNamesTheEmptyValuesAccepted: an empty parameter is 400, but
// for the three that read as absent (cursor=, the first page; log= and an
// empty Ledger-Log, no log named), which docs/api.md must name, since the
// README says every empty parameter is 400.
func TestAPIDocNamesTheEmptyValuesAccepted(t *testing.T) {
	e := MustEnv(t, nil)
	e.expect(200, "GET", "/v1/targets/article/a-1/like?cursor=", "")
	e.expect(200, "GET", "/v1/users/u1/like?cursor=&log=", "")
	e.expect(400, "GET", "/v1/users/u1/like?type=", "")
	md, err := os.ReadFile(apiDocPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"An empty `cursor=` is the first page", "An empty `log=`"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("docs/api.md does not say %q", want)
		}
	}
}
