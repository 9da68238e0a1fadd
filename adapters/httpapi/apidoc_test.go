package httpapi

import (
	"encoding/json"
	"os"
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
