package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/domain"
)

// FuzzAuthenticate sends Authorization headers built around tokens signed
// with the configured secret (arbitrary header and claims JSON, arbitrary
// text around them, then one character changed to a base64url one) to the
// authenticator of service tokens and HS256 user tokens. Accepted: a
// service token exactly as configured, or a user token each of whose
// parts is the one base64url spelling of its bytes and whose sub is the
// principal; refused: a 401, never another status.
func FuzzAuthenticate(f *testing.F) {
	tokens := mustTokens(f)
	a := newAuthenticator(AuthConfig{Tokens: tokens, JWTSecret: []byte(jwtSecret)})
	const exp = 4102444800 // 2100: a seed's token stays valid, and replays alike
	claims := `{"sub":"u1","exp":` + itoa(exp) + `}`
	for _, s := range []struct {
		scheme, header, claims, before, after string
		at                                    uint16
		to                                    byte
	}{
		{"Bearer", `{"alg":"HS256","typ":"JWT"}`, claims, "", "", 0, 0},
		{"bearer", `{"alg":"HS256"}`, claims, "", "", 2, 'B'},
		{"Bearer", `{"alg":"HS256","typ":"JWT"}`, claims, "", "", 1, 0},
		{"Bearer", `{"alg":"none"}`, claims, "", "", 0, 0},
		{"Bearer", `{"alg":"HS256"}`, `{"sub":"u1","exp":"` + itoa(exp) + `"}`, "", "", 0, 0},
		{"Bearer", `{"alg":"HS256"}`, `{"sub":"bad user","exp":` + itoa(exp) + `}`, "", "", 0, 0},
		{"Bearer", `{"alg":"HS256"}`, `{"sub":"u1"}`, "", "", 0, 0},
		{"Bearer", "", "", readToken, "", 0, 0},
		{"Bearer", "", "", readToken, " ", 0, 0},
		{"Basic", "", "", adminToken, "", 0, 0},
		{"Bearer", `{"alg":"HS256"}`, claims, " ", "=", 0, 0},
	} {
		f.Add(s.scheme, s.header, s.claims, s.before, s.after, s.at, s.to)
	}
	f.Fuzz(func(t *testing.T, scheme, header, claims, before, after string, at uint16, to byte) {
		tok := before
		if header != "" || claims != "" {
			tok += signHS256(header, claims)
		}
		tok += after
		if at != 0 && len(tok) > 0 { // the at-th character from the end, to a base64url one
			b := []byte(tok)
			b[len(b)-1-(int(at)-1)%len(b)] = base64url[int(to)%len(base64url)]
			tok = string(b)
		}
		r := newRequest("GET", "/v1/targets/article/a-1", nil)
		r.Header["Authorization"] = []string{scheme + " " + tok}
		p, err := a.authenticate(r)
		if err != nil {
			if status := problemFor(err, false).Status; status != 401 {
				t.Fatalf("%q refused with %d: %v", r.Header.Get("Authorization"), status, err)
			}
			return
		}
		raw, _ := bearer(r.Header.Get("Authorization"))
		if p.user.IsZero() {
			if !isServiceToken(tokens, raw) {
				t.Fatalf("%q accepted as service token %s", raw, p.name)
			}
			return
		}
		checkUserToken(t, raw, p)
	})
}

// checkUserToken fails unless raw, an accepted user token, has three
// parts each spelt as base64url spells its bytes, and p is its sub.
func checkUserToken(t *testing.T, raw string, p principal) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%q accepted with %d parts", raw, len(parts))
	}
	for _, part := range parts {
		b, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != part {
			t.Fatalf("%q accepted, its part %q is not the base64url of its bytes", raw, part)
		}
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct{ Sub string }
	if err := json.Unmarshal(payload, &c); err != nil || c.Sub != p.user.String() {
		t.Fatalf("%q accepted as %s, its claims say %s (%v)", raw, p.user, payload, err)
	}
	if _, err := domain.NewUserID(c.Sub); err != nil {
		t.Fatalf("%q accepted with sub %q: %v", raw, c.Sub, err)
	}
}

func isServiceToken(tokens []Token, raw string) bool {
	for _, tk := range tokens {
		if tk.Secret == raw {
			return true
		}
	}
	return false
}

// signHS256 makes a JWT of header and claims, as written, signed with
// jwtSecret.
func signHS256(header, claims string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, []byte(jwtSecret))
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// FuzzParseTokens reads arbitrary tokens files: every token accepted is
// a line's first field, of 16 characters or more, with known scopes; a
// refusal never quotes a token (a line's first field that long).
func FuzzParseTokens(f *testing.F) {
	for _, s := range []string{
		"read-token-0123456789 read\n", "\ufeffadmin-token-0123456789 admin,write\n# c\n\n",
		"short read\n", "read-token-0123456789 rread\n", "read-token-0123456789 read\nread-token-0123456789 write\n",
		"read-token-0123456789\n", "read-token-0123456789 read write\n", "", "#\n", "tok\x00en-0123456789abc read\r\n",
		"read,write,admin token-0123456789abcdef\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		tokens, err := ParseTokens(strings.NewReader(file))
		if err != nil {
			for _, line := range strings.Split(file, "\n") {
				if fs := strings.Fields(strings.TrimPrefix(line, "\ufeff")); len(fs) > 0 && len(fs[0]) >= minTokenLen && strings.Contains(err.Error(), fs[0]) {
					t.Fatalf("error %q quotes the token %q", err, fs[0])
				}
			}
			return
		}
		for _, tk := range tokens {
			if err := tk.validate(); err != nil || strings.ContainsAny(tk.Secret, " \t\r\n") || !strings.Contains(file, tk.Secret) {
				t.Fatalf("accepted token %+v (%v)", tk, err)
			}
		}
	})
}
