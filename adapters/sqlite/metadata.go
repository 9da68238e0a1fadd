package sqlite

import (
	"encoding/json"
	"strings"

	"github.com/interactionledger/ledger/domain"
)

// decodeMetadata decodes the JSON object the writer stored. Objects without
// escapes (nearly all) are split by hand, which is several times faster than
// encoding/json on the history-read path; anything else goes to
// encoding/json.
func decodeMetadata(s string) (domain.Metadata, error) {
	if m, ok := splitFlatObject(s); ok {
		return domain.DecodeMetadata(m)
	}
	var m domain.Metadata
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// splitFlatObject parses {"k":"v",...} whose strings hold no backslash.
func splitFlatObject(s string) (map[string]string, bool) {
	if strings.IndexByte(s, '\\') >= 0 || len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	body := s[1 : len(s)-1]
	m := make(map[string]string, strings.Count(body, `":"`))
	for body != "" {
		k, rest, ok := quoted(body)
		if !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		v, rest, ok := quoted(rest[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if rest == "" {
			break
		}
		if rest[0] != ',' || len(rest) == 1 {
			return nil, false
		}
		body = rest[1:]
	}
	return m, true
}

// quoted splits a leading "string" (without escapes) from s.
func quoted(s string) (str, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}
