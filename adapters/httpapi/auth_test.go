package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/interactionledger/ledger/domain"
)

const (
	readToken  = "read-token-0123456789"
	writeToken = "write-token-0123456789"
	adminToken = "admin-token-0123456789"
	jwtSecret  = "a-secret-of-at-least-thirty-two-bytes!"
	// base64url is the alphabet of a JWT's parts, by value.
	base64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

func mustTokens(tb testing.TB) []Token {
	tb.Helper()
	tokens, err := ParseTokens(strings.NewReader("# service tokens\n\n" +
		readToken + " read\n" + writeToken + " write\n" + adminToken + " admin\n"))
	if err != nil {
		tb.Fatal(err)
	}
	return tokens
}

func hsToken(tb testing.TB, sub string, exp time.Time) string {
	tb.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{
		Subject: sub, ExpiresAt: jwt.NewNumericDate(exp),
	}).SignedString([]byte(jwtSecret))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestAuth(t *testing.T) {
	e := MustEnv(t, func(c *Config) {
		c.Auth = AuthConfig{Tokens: mustTokens(t), JWTSecret: []byte(jwtSecret)}
		c.Listen = "0.0.0.0:8080"
	})
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	u1 := hsToken(t, "u1", time.Now().Add(time.Hour))
	put := "/v1/targets/article/a-1/like/u1"
	t.Run("ErrUnauthorized", func(t *testing.T) {
		e.expect(401, "GET", "/v1/targets/article/a-1", "")
		e.expect(401, "GET", "/v1/targets/article/a-1", "", bearer("wrong-token-0123456789")...)
		e.expect(401, "GET", "/v1/targets/article/a-1", "", "Authorization", "Basic "+readToken)
		e.expect(401, "PUT", put, "", bearer(hsToken(t, "u1", time.Now().Add(-time.Hour)))...)
		e.expect(401, "PUT", put, "", bearer(hsToken(t, "bad user", time.Now().Add(time.Hour)))...)
		// A NumericDate is a JSON number; golang-jwt alone reads a
		// numeric string as one too.
		stringExp, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "u1", "exp": fmt.Sprint(time.Now().Add(time.Hour).Unix()),
		}).SignedString([]byte(jwtSecret))
		if err != nil {
			t.Fatal(err)
		}
		e.expect(401, "PUT", put, "", bearer(stringExp)...)
		two := newRequest("GET", "/v1/targets/article/a-1", nil)
		two.Header.Add("Authorization", "Bearer "+readToken)
		two.Header.Add("Authorization", "Bearer wrong-token-0123456789")
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, two)
		if rec.Code != 401 || !strings.Contains(rec.Body.String(), "one Authorization header") {
			t.Errorf("two Authorization headers: %d %s", rec.Code, rec.Body)
		}
		res, _ := e.do("GET", "/v1/events", "")
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
	})
	t.Run("ErrForbidden", func(t *testing.T) {
		e.expect(403, "PUT", put, "", bearer(readToken)...)
		e.expect(403, "PUT", "/v1/targets/article/a-1/like/u2", "", bearer(u1)...)
		e.expect(403, "GET", "/v1/users/u2/like", "", bearer(u1)...)
		e.expect(403, "GET", "/v1/events", "", bearer(readToken)...)
		e.expect(403, "GET", "/v1/events/stream", "", bearer(writeToken)...)
		e.expect(403, "GET", "/v1/events", "", bearer(u1)...)
	})
	// A caller without rights learns nothing about which inputs are
	// valid: authorization comes before any parameter check.
	t.Run("ErrForbiddenBeforeValidation", func(t *testing.T) {
		for _, path := range []string{
			"/v1/users/u2/follow", "/v1/users/u2/like?limit=0", "/v1/users/u2/like?cursor=forged",
			"/v1/users/u2/Bad%20Kind", "/v1/users/bad%20user/like",
		} {
			e.expect(403, "GET", path, "", bearer(u1)...)
		}
		for _, path := range []string{"/v1/targets/article/a-1/follow/u2", "/v1/targets/Bad/a-1/like/u2"} {
			e.expect(403, "PUT", path, "", append(bearer(u1), "If-Match", "bad")...)
		}
	})
	t.Run("OK", func(t *testing.T) {
		e.expect(200, "PUT", put, "", bearer(u1)...)
		e.expect(200, "PUT", "/v1/targets/article/a-1/collect/u7", "", bearer(writeToken)...)
		e.expect(200, "GET", "/v1/users/u1/like", "", bearer(u1)...)
		e.expect(200, "GET", "/v1/users/u1/like", "", bearer(readToken)...)
		e.expect(200, "GET", "/v1/users/u9/like", "", bearer(writeToken)...)
		e.expect(200, "GET", "/v1/targets/article/a-1?viewer=u2", "", bearer(u1)...)
		e.expect(200, "GET", "/v1/events", "", bearer(adminToken)...)
		e.expect(200, "PUT", "/v1/targets/article/a-1/like/u3", "", bearer(adminToken)...)
		e.expect(200, "GET", "/healthz", "")
		e.expect(200, "GET", "/metrics", "")
	})
	t.Run("TokensNotLogged", func(t *testing.T) {
		logs := e.logs.String()
		for _, secret := range []string{readToken, writeToken, adminToken, u1, "wrong-token-0123456789", jwtSecret} {
			if strings.Contains(logs, secret) {
				t.Fatalf("a token appears in the logs")
			}
		}
		if !strings.Contains(logs, "principal=token@4") || !strings.Contains(logs, "principal=user:u1") {
			t.Fatalf("logs do not name the principals:\n%s", logs)
		}
	})
}

func TestPublicHistory(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Auth = AuthConfig{Tokens: mustTokens(t)}; c.PublicHistory = true })
	e.expect(200, "GET", "/v1/events", "", "Authorization", "Bearer "+readToken)
}

func TestEdDSA(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	key, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	e := MustEnv(t, func(c *Config) { c.Auth = AuthConfig{JWTPublicKey: key} })
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "u1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(priv)
	e.expect(200, "PUT", "/v1/targets/article/a-1/like/u1", "", "Authorization", "Bearer "+tok)
	hs := hsToken(t, "u1", time.Now().Add(time.Hour))
	e.expect(401, "PUT", "/v1/targets/article/a-1/like/u1", "", "Authorization", "Bearer "+hs)
	notYet, _ := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.RegisteredClaims{Subject: "u1", NotBefore: jwt.NewNumericDate(time.Now().Add(time.Hour))}).SignedString(priv)
	e.expect(401, "PUT", "/v1/targets/article/a-1/like/u1", "", "Authorization", "Bearer "+notYet)
}

// TestRSAKeySize: an RSA key under 2048 bits is refused (a 1024-bit one
// was taken, and tokens signed with it were trusted); 2048 is taken.
func TestRSAKeySize(t *testing.T) {
	for _, bits := range []int{1024, 2048} {
		priv, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
		_, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		if refused := err != nil && strings.Contains(err.Error(), "at least 2048"); refused != (bits < 2048) {
			t.Errorf("%d-bit RSA key: %v", bits, err)
		}
		if err := (AuthConfig{JWTPublicKey: &priv.PublicKey}).Validate(); (err != nil) != (bits < 2048) {
			t.Errorf("AuthConfig with a %d-bit RSA key: %v", bits, err)
		}
	}
}

// TestJWTClaims: a user token must expire, and must name the configured
// audience and issuer when they are set.
// TestJWTOneSpelling: a token whose signature's last character had its
// unused low bits set (another spelling of the same bytes) was accepted
// as the token issued; strict base64 refuses it.
func TestJWTOneSpelling(t *testing.T) {
	a := newAuthenticator(AuthConfig{JWTSecret: []byte(jwtSecret)})
	tok := hsToken(t, "u1", time.Now().Add(time.Hour))
	other := tok[:len(tok)-1] + string(base64url[strings.IndexByte(base64url, tok[len(tok)-1])^1])
	for raw, want := range map[string]int{tok: 0, other: 401} { // 0: accepted
		r := newRequest("GET", "/v1/targets/article/a-1", nil)
		r.Header.Set("Authorization", "Bearer "+raw)
		if _, err := a.authenticate(r); (err == nil) != (want == 0) || err != nil && problemFor(err, false).Status != want {
			t.Errorf("token %q: %v, want status %d", raw, err, want)
		}
	}
}

func TestJWTClaims(t *testing.T) {
	sign := func(c jwt.RegisteredClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(jwtSecret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	exp := jwt.NewNumericDate(time.Now().Add(time.Hour))
	put := "/v1/targets/article/a-1/like/u1"
	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	t.Run("ErrNoExp", func(t *testing.T) {
		e := MustEnv(t, func(c *Config) { c.Auth = AuthConfig{JWTSecret: []byte(jwtSecret)} })
		e.expect(401, "PUT", put, "", bearer(sign(jwt.RegisteredClaims{Subject: "u1"}))...)
		e.expect(200, "PUT", put, "", bearer(sign(jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp}))...)
	})
	e := MustEnv(t, func(c *Config) {
		c.Auth = AuthConfig{JWTSecret: []byte(jwtSecret), JWTAudience: "ledger", JWTIssuer: "https://id.example"}
	})
	good := jwt.RegisteredClaims{Subject: "u1", ExpiresAt: exp, Audience: jwt.ClaimStrings{"other", "ledger"}, Issuer: "https://id.example"}
	for name, edit := range map[string]func(*jwt.RegisteredClaims){
		"ErrWrongAudience": func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} },
		"ErrNoAudience":    func(c *jwt.RegisteredClaims) { c.Audience = nil },
		"ErrWrongIssuer":   func(c *jwt.RegisteredClaims) { c.Issuer = "https://evil.example" },
		"ErrNoIssuer":      func(c *jwt.RegisteredClaims) { c.Issuer = "" },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			edit(&c)
			e.expect(401, "PUT", put, "", bearer(sign(c))...)
		})
	}
	t.Run("OK", func(t *testing.T) {
		e.expect(200, "PUT", put, "", bearer(sign(good))...)
	})
	t.Run("ErrAudienceWithoutKey", func(t *testing.T) {
		c := DefaultConfig()
		c.Auth = AuthConfig{Tokens: mustTokens(t), JWTAudience: "ledger"}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "audience") {
			t.Fatalf("validate: %v", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Run("ErrNonLoopbackWithoutTokens", func(t *testing.T) {
		for _, listen := range []string{"0.0.0.0:8080", ":8080", "10.1.2.3:80", "example.com:80"} {
			c := DefaultConfig()
			c.Listen = listen
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "loopback") {
				t.Errorf("%s: %v", listen, err)
			}
		}
	})
	t.Run("ErrBadPort", func(t *testing.T) {
		for _, listen := range []string{"127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:notaport"} {
			c := DefaultConfig()
			c.Listen = listen
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "port") {
				t.Errorf("%s: %v, want the port refused", listen, err)
			}
		}
	})
	t.Run("OKLoopback", func(t *testing.T) {
		for _, listen := range []string{"127.0.0.1:0", "localhost:8080", "[::1]:8080", "127.0.0.1:65535", "localhost:http"} {
			c := DefaultConfig()
			c.Listen = listen
			if err := c.Validate(); err != nil {
				t.Errorf("%s: %v", listen, err)
			}
		}
	})
	t.Run("ErrAll", func(t *testing.T) {
		c := DefaultConfig()
		c.ConsistencyTimeout, c.StreamBuffer, c.WriteRate = 0, 0, -1
		c.Auth.JWTSecret = []byte("short")
		err := c.Validate()
		for _, want := range []string{"consistency timeout", "stream buffer", "write rate", "32 bytes"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("missing %q in %v", want, err)
			}
		}
		if !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%v does not match domain.ErrInvalidInput", err)
		}
	})
	t.Run("ErrInvalidInput", func(t *testing.T) {
		cors := CORSConfig{Credentials: true}
		auth := AuthConfig{JWTAudience: "app"}
		_, newErr := New(DefaultConfig(), Deps{}, nil)
		for name, err := range map[string]error{"cors": cors.Validate(), "auth": auth.Validate(), "deps": newErr} {
			if !errors.Is(err, domain.ErrInvalidInput) {
				t.Errorf("%s: %v does not match domain.ErrInvalidInput", name, err)
			}
		}
	})
}

func TestParseTokens(t *testing.T) {
	for name, file := range map[string]string{
		"ErrEmpty":        "# nothing\n",
		"ErrShort":        "short read\n",
		"ErrScope":        "long-enough-token-123 root\n",
		"ErrFields":       "long-enough-token-123\n",
		"ErrExtraField":   "long-enough-token-123 read write\n",
		"ErrNoScopeValue": "long-enough-token-123 ,\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTokens(strings.NewReader(file))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), "long-enough-token-123") {
				t.Fatalf("error reveals the token: %v", err)
			}
		})
	}
}

// TestParseTokensBOM: a byte order mark that starts the file is not part
// of the first token (it used to be, so that token never matched).
// TestParseTokensSwappedColumns: a line with its columns swapped and a
// scope list of 16 characters or more ("read,write,admin TOKEN") was
// refused quoting its token as an unknown scope; a refusal names the
// line and the scope's place in it, never the text.
func TestParseTokensSwappedColumns(t *testing.T) {
	_, err := ParseTokens(strings.NewReader("# tokens\nread,write,admin token-0123456789abcdef\n"))
	if err == nil || strings.Contains(err.Error(), "token-0123456789abcdef") || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("swapped columns: %v, want line 2 named without its token", err)
	}
}

func TestParseTokensBOM(t *testing.T) {
	tokens, err := ParseTokens(strings.NewReader("\ufeff" + readToken + " read\n" + writeToken + " write\n"))
	if err != nil {
		t.Fatal(err)
	}
	if tokens[0].Secret != readToken || tokens[0].Name != "token@1" {
		t.Errorf("first token %q (%s), want %q (token@1)", tokens[0].Secret, tokens[0].Name, readToken)
	}
}

// TestDuplicateTokenNamesLines: a token listed twice is reported by its
// lines in the file (it was "token 2", the index among the tokens), and by
// label when the tokens come from elsewhere.
func TestDuplicateTokenNamesLines(t *testing.T) {
	file := "# tokens\n\n" + readToken + " read\n" + writeToken + " write\n" + readToken + " admin\n"
	_, err := ParseTokens(strings.NewReader(file))
	if err == nil || err.Error() != "tokens line 5: the token of line 3 is listed twice" {
		t.Errorf("ParseTokens: %v, want line 5 naming line 3", err)
	}
	a := AuthConfig{Tokens: []Token{
		{Secret: readToken, Scopes: []Scope{ScopeRead}},
		{Secret: readToken, Scopes: []Scope{ScopeAdmin}},
	}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "auth: token 2 repeats token 1") {
		t.Errorf("Validate: %v, want token 2 repeats token 1", err)
	}
}

// TestOpenModeRefusesForeignHost: without tokens every endpoint is open to
// whoever reaches the loopback listener, and a web page the developer
// visits reaches it by DNS rebinding (its own name, resolved to 127.0.0.1,
// makes the page same-origin with the server). Such a request names the
// page's host in Host; one naming this machine is served.
func TestOpenModeRefusesForeignHost(t *testing.T) {
	e := MustEnv(t, nil)
	send := func(method, path, host string) *httptest.ResponseRecorder {
		r := newRequest(method, path, nil)
		r.Host = host
		rec := httptest.NewRecorder()
		e.srv.Handler().ServeHTTP(rec, r)
		return rec
	}
	for _, host := range []string{"evil.example:8080", "evil.example", "127.0.0.1.evil.example", "localhost.evil.example:8080"} {
		for _, path := range []string{"/v1/targets/article/a-1/like/u1", "/v1/events", "/healthz"} {
			method := "GET"
			if strings.Contains(path, "/like/") {
				method = "PUT"
			}
			rec := send(method, path, host)
			if rec.Code != 403 || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s with Host %s: %d %s, want a 403 problem", method, path, host, rec.Code, rec.Body)
			}
			// The rebinding page is same-origin: it reads every header of
			// the 403. Nothing of the log (its position, how busy it is;
			// its id) is its to read.
			for _, h := range []string{"Ledger-Position", "Ledger-Log"} {
				if v := rec.Header().Get(h); v != "" {
					t.Errorf("%s %s with Host %s: the 403 carries %s: %s", method, path, host, h, v)
				}
			}
		}
	}
	for _, host := range []string{"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:8080", "app.localhost:5173", "127.0.0.2"} {
		if rec := send("GET", "/v1/targets/article/a-1", host); rec.Code != 200 {
			t.Errorf("Host %s: %d %s, want 200", host, rec.Code, rec.Body)
		}
	}
	e.expect(200, "GET", "/v1/targets/article/a-1", "") // the test server's own 127.0.0.1:port
}

// TestTokensServeAnyHost: with tokens a request must carry one, whatever
// Host it names (the server may be behind a proxy or a load balancer).
func TestTokensServeAnyHost(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Auth = AuthConfig{Tokens: mustTokens(t)} })
	r := newRequest("GET", "/v1/targets/article/a-1", nil)
	r.Host = "ledger.example"
	r.Header.Set("Authorization", "Bearer "+readToken)
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, r)
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestAuthorizationOrderAsDocumented: a token that may not act for the
// path's user gets 403 whatever is wrong with the path, query, headers or
// body of its own request, but for the checks every request passes first
// (a GET with a body, an unclean path, the log it names), which the README
// names as the exceptions.
func TestAuthorizationOrderAsDocumented(t *testing.T) {
	e := MustEnv(t, func(c *Config) { c.Auth = AuthConfig{JWTSecret: []byte(jwtSecret)} })
	u2 := []string{"Authorization", "Bearer " + hsToken(t, "u2", time.Now().Add(time.Hour))}
	e.expect(403, "PUT", "/v1/targets/Bad/a-1/nokind/u3?limit=x", "[", append(u2, "If-Match", "*")...)
	e.expect(403, "GET", "/v1/users/u3/nokind?limit=0", "", append(u2, "Accept", "text/html")...)
	e.expect(400, "PUT", "/v1/targets/article/a-1/like/u3", "", append(u2, "Ledger-Log", "zz")...)
	e.expect(400, "GET", "/v1/users/u3/like", "x", u2...)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "but for the checks every request passes first"; !strings.Contains(string(readme), want) {
		t.Errorf("README does not say %q", want)
	}
}
