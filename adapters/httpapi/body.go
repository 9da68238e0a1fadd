package httpapi

// The optional JSON body of a write, {"metadata": {...}}: read bounded,
// strictly (unknown fields, a field name in another case, duplicate keys,
// null, trailing data and escapes that are not characters are 400), and
// validated as domain.Metadata once.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/interactionledger/ledger/domain"
)

// writeBody is the optional JSON body of a write.
type writeBody struct {
	Metadata map[string]string `json:"metadata"`
}

// readMetadata reads the optional body. An empty body is no metadata.
func readMetadata(r *http.Request) (domain.Metadata, error) {
	if r.ContentLength > MaxBodyBytes {
		return domain.Metadata{}, errTooLarge(fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: "could not be read"}}
	}
	if len(raw) > MaxBodyBytes {
		return domain.Metadata{}, errTooLarge(fmt.Sprintf("the body must be at most %d bytes", MaxBodyBytes))
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return domain.Metadata{}, nil
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		return domain.Metadata{}, errMediaType("the body must be JSON (Content-Type: application/json)")
	}
	if ce := r.Header.Values("Content-Encoding"); len(ce) > 0 && !(len(ce) == 1 && strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		// Read as is, a gzip body was "not UTF-8" and a br one stored as text.
		return domain.Metadata{}, errMediaType(fmt.Sprintf("the body must not be encoded (Content-Encoding %q)", strings.Join(ce, ", ")))
	}
	if !utf8.Valid(raw) {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: "must be UTF-8"}}
	}
	var body writeBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: jsonReason(err)}}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: "must be one JSON object"}}
	}
	if reason, bad := strictShape(raw); bad {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: reason}}
	}
	if loneSurrogate(raw) {
		return domain.Metadata{}, paramErrors{{Name: "body", Reason: `a \u escape is not a Unicode character (a lone surrogate)`}}
	}
	md, err := domain.NewMetadata(body.Metadata)
	if err != nil {
		return domain.Metadata{}, paramErrors{{Name: "metadata", Reason: validationReason(err)}}
	}
	return md, nil
}

// loneSurrogate reports whether raw, valid JSON, holds a \u escape of half
// a UTF-16 surrogate pair that is not followed or preceded by its other
// half: encoding/json decodes it as U+FFFD instead of failing, so the
// stored metadata would differ from what the client sent. (Looking for a
// U+FFFD in the decoded values missed it beside a U+FFFD the body spelled
// out.) Backslashes occur only in strings, so raw is scanned as it is.
func loneSurrogate(raw []byte) bool {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character: a backslash escaped is not one that escapes
		r, ok := escapedRune(raw, i)
		if !ok || !utf16.IsSurrogate(r) {
			continue
		}
		if r >= 0xDC00 { // a low half without the high one before it
			return true
		}
		low, ok := escapedRune(raw, i+6)
		if !ok || low < 0xDC00 || low > 0xDFFF {
			return true
		}
		i += 6
	}
	return false
}

// escapedRune is the rune of the \u escape whose u is at raw[i].
func escapedRune(raw []byte, i int) (rune, bool) {
	if i+4 >= len(raw) || raw[i] != 'u' || (i > 0 && raw[i-1] != '\\') {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[i+1:i+5]), 16, 16)
	return rune(n), err == nil
}

// jsonObject is one open object or array while strictShape walks a body.
type jsonObject struct {
	keys      map[string]bool // nil for an array
	expectKey bool
}

// strictShape reports what encoding/json lets through in raw, which is
// valid JSON and decoded into a writeBody, and why: a key that appears
// twice in one object (the last value would silently win), a field of the
// body other than "metadata" spelled exactly so (field names match
// without regard to case), or a null (decoded as an empty string). The
// stored metadata would otherwise differ from what the client sent.
func strictShape(raw []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var stack []*jsonObject
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				stack = append(stack, &jsonObject{keys: map[string]bool{}, expectKey: true})
			case '[':
				stack = append(stack, &jsonObject{})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1].expectKey {
			top := stack[n-1]
			key, _ := tok.(string)
			switch {
			case top.keys[key]:
				return fmt.Sprintf("key %q appears twice in one object", clip(key)), true
			case n == 1 && key != "metadata":
				return fmt.Sprintf(`unknown field %q: the body is {"metadata": {"key": "value", ...}}`, clip(key)), true
			}
			top.keys[key], top.expectKey = true, false
			continue
		}
		if tok == nil {
			return "null is not a value here: metadata is an object of strings", true
		}
		valueDone()
	}
}

// jsonReason describes a decode error without echoing unbounded input.
func jsonReason(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("not valid JSON at byte %d", syn.Offset)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Sprintf(`must be a JSON object, {"metadata": {...}}, not %s`, clip(typ.Value))
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be %s, not %s", typ.Field, jsonKind(typ.Type), clip(typ.Value))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	return clip(err.Error())
}

// jsonKind names what a JSON value decoded into t must be.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Map:
		if t.Elem().Kind() == reflect.String {
			return "an object of strings"
		}
		return "an object"
	case reflect.Struct:
		return "an object"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Bool:
		return "true or false"
	}
	return "a number"
}
