package httpapi

import (
	"bufio"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/interactionledger/ledger/domain"
)

// Scope is a permission of a service token.
type Scope string

// The scopes of docs/api.md. Admin implies the others; write implies read.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// Token is one service token and its scopes.
type Token struct {
	// Name identifies the token in logs (never the secret itself).
	Name   string
	Secret string
	Scopes []Scope
}

// minTokenLen is the length of the shortest token.
const minTokenLen = 16

func (t Token) validate() error {
	switch {
	case len(t.Secret) < minTokenLen:
		return fmt.Errorf("a token must be at least %d characters", minTokenLen)
	case len(t.Scopes) == 0:
		return errors.New("a token needs at least one scope")
	}
	for i, s := range t.Scopes {
		switch {
		case s == ScopeRead || s == ScopeWrite || s == ScopeAdmin:
		case len(s) >= minTokenLen:
			// Long enough to be a token, as in a line with its columns
			// swapped: an error must not quote it.
			return fmt.Errorf("scope %d is unknown (want read, write or admin), and as long as a token: are the columns swapped?", i+1)
		case !printableASCII(string(s)):
			// Quoted, its escapes (\x00…) can spell a token's text.
			return fmt.Errorf("scope %d is unknown (want read, write or admin), and holds a character that is not printable ASCII", i+1)
		default:
			return fmt.Errorf("unknown scope %q (want read, write or admin)", s)
		}
	}
	return nil
}

// printableASCII reports whether s holds printable ASCII only.
func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// label names the i-th token (from 0) in errors: its Name (a tokens
// file's "token@LINE"), else "token N" (from 1).
func (t Token) label(i int) string {
	if t.Name != "" {
		return t.Name
	}
	return fmt.Sprintf("token %d", i+1)
}

// ParseTokens reads a tokens file: one "token scope[,scope]" per line;
// blank lines and lines starting with '#' are skipped. Tokens are named
// after their line ("token@3"). It returns an error naming the first bad
// line (without its token), or the two lines of a token listed twice. A
// UTF-8 byte order mark at the start of the file is skipped.
func ParseTokens(r io.Reader) ([]Token, error) {
	var tokens []Token
	lineOf := map[string]int{} // secret → its line
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if n == 1 {
			// Editors on Windows often start a UTF-8 file with a byte order
			// mark, which TrimSpace keeps: it would be part of the token.
			text = strings.TrimPrefix(text, "\ufeff")
		}
		line := strings.TrimSpace(text)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t, err := parseTokenLine(line, n)
		if err != nil {
			return nil, err
		}
		if first, ok := lineOf[t.Secret]; ok {
			return nil, fmt.Errorf("tokens line %d: the token of line %d is listed twice", n, first)
		}
		lineOf[t.Secret] = n
		tokens = append(tokens, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	if len(tokens) == 0 {
		return nil, errors.New("tokens file has no tokens")
	}
	return tokens, nil
}

// parseTokenLine parses line n of a tokens file, "token scope[,scope]".
func parseTokenLine(line string, n int) (Token, error) {
	fields := strings.Fields(line)
	if len(fields) != 2 {
		return Token{}, fmt.Errorf("tokens line %d: want \"token scope[,scope]\"", n)
	}
	t := Token{Name: fmt.Sprintf("token@%d", n), Secret: fields[0]}
	for s := range strings.SplitSeq(fields[1], ",") {
		t.Scopes = append(t.Scopes, Scope(strings.TrimSpace(s)))
	}
	if err := t.validate(); err != nil {
		return Token{}, fmt.Errorf("tokens line %d: %w", n, err)
	}
	return t, nil
}

// ParsePublicKey decodes a PEM public key (PKIX "PUBLIC KEY", or PKCS#1
// "RSA PUBLIC KEY") for RS256 or EdDSA user tokens. It returns an error for
// anything else.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("jwt public key: no PEM block found")
	}
	var key any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("jwt public key: unsupported PEM block %q", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("jwt public key: %w", err)
	}
	if _, err := jwtMethodsFor(key); err != nil {
		return nil, err
	}
	return key, nil
}

// minRSABits is the smallest RSA key RS256 tokens are verified with
// (NIST SP 800-131A retired 1024-bit RSA signatures in 2013).
const minRSABits = 2048

func jwtMethodsFor(key crypto.PublicKey) ([]string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < minRSABits {
			return nil, fmt.Errorf("jwt public key: an RSA key of %d bits; RS256 needs at least %d", n, minRSABits)
		}
		return []string{"RS256"}, nil
	case ed25519.PublicKey:
		return []string{"EdDSA"}, nil
	}
	return nil, fmt.Errorf("jwt public key: %T is not an RSA or Ed25519 key", key)
}

// principal is who a request acts as. The zero principal is anonymous.
type principal struct {
	name   string // for logs: a token's name or "user:<sub>"
	open   bool   // no authentication configured: everything is allowed
	scopes []Scope
	user   domain.UserID // set for JWT users
}

// has reports whether p holds scope s: admin implies every scope, and
// write implies read (a backend that writes for users also reads).
func (p principal) has(s Scope) bool {
	for _, have := range p.scopes {
		if have == s || have == ScopeAdmin || (have == ScopeWrite && s == ScopeRead) {
			return true
		}
	}
	return false
}

// canRead: service tokens with read, and every signed-in user.
func (p principal) canRead() bool { return p.open || p.has(ScopeRead) || !p.user.IsZero() }

// canActFor: writes and /v1/users/{user} reads. It takes the user as
// the path has it, before any validation, so that a caller without rights
// learns nothing about which inputs are valid.
func (p principal) canActFor(user string, need Scope) error {
	switch {
	case p.open || p.has(need):
		return nil
	case !p.user.IsZero() && p.user.String() == user:
		return nil
	case !p.user.IsZero():
		return errForbidden("this token acts for another user")
	}
	return errForbidden(fmt.Sprintf("this token lacks the %s scope", need))
}

// authenticator checks bearer credentials. It is safe for concurrent use.
type authenticator struct {
	enabled bool
	tokens  []hashedToken
	keyFunc jwt.Keyfunc
	parser  *jwt.Parser
}

type hashedToken struct {
	sum    [sha256.Size]byte
	name   string
	scopes []Scope
}

func newAuthenticator(c AuthConfig) *authenticator {
	a := &authenticator{enabled: c.Enabled()}
	for _, t := range c.Tokens {
		a.tokens = append(a.tokens, hashedToken{sum: sha256.Sum256([]byte(t.Secret)), name: t.Name, scopes: t.Scopes})
	}
	switch {
	case len(c.JWTSecret) > 0:
		secret := c.JWTSecret
		a.keyFunc = func(*jwt.Token) (any, error) { return secret, nil }
		a.parser = newJWTParser([]string{"HS256"}, c)
	case c.JWTPublicKey != nil:
		methods, _ := jwtMethodsFor(c.JWTPublicKey)
		key := c.JWTPublicKey
		a.keyFunc = func(*jwt.Token) (any, error) { return key, nil }
		a.parser = newJWTParser(methods, c)
	}
	return a
}

// newJWTParser accepts only the given methods and tokens that expire (a
// token without exp would be valid forever); it checks aud and iss when
// c sets them. Its base64 is strict: a segment whose last character has
// unused bits set spells the bytes of another, and the token issued would
// have a second spelling that is accepted too.
func newJWTParser(methods []string, c AuthConfig) *jwt.Parser {
	opts := []jwt.ParserOption{jwt.WithValidMethods(methods), jwt.WithLeeway(5 * time.Second), jwt.WithExpirationRequired(),
		jwt.WithStrictDecoding()}
	if c.JWTAudience != "" {
		opts = append(opts, jwt.WithAudience(c.JWTAudience))
	}
	if c.JWTIssuer != "" {
		opts = append(opts, jwt.WithIssuer(c.JWTIssuer))
	}
	return jwt.NewParser(opts...)
}

// authenticate returns the request's principal. With authentication
// enabled it returns a 401 error for a missing or invalid credential.
func (a *authenticator) authenticate(r *http.Request) (principal, error) {
	if !a.enabled {
		return principal{name: "open", open: true}, nil
	}
	if len(r.Header.Values("Authorization")) > 1 {
		// Which one would count is a guess between proxies and servers.
		return principal{}, errUnauthorized("send one Authorization header, not several")
	}
	raw, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return principal{}, errUnauthorized("a bearer token is required")
	}
	if p, ok := a.service(raw); ok {
		return p, nil
	}
	if a.parser != nil {
		return a.user(raw)
	}
	return principal{}, errUnauthorized("the token is not valid")
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", false
	}
	return tok, true
}

// service compares against every token in constant time: the hashes have
// a fixed length, and the loop never stops early.
func (a *authenticator) service(raw string) (principal, bool) {
	sum := sha256.Sum256([]byte(raw))
	var found *hashedToken
	for i := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], a.tokens[i].sum[:]) == 1 {
			found = &a.tokens[i]
		}
	}
	if found == nil {
		return principal{}, false
	}
	return principal{name: found.name, scopes: found.scopes}, true
}

// numericDates reports whether the time claims of a token, whose
// signature is already verified, are JSON numbers: golang-jwt also reads a
// numeric string ("exp": "1765000000") as a date, which RFC 7519 does not
// allow and other verifiers refuse.
func numericDates(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.Strict().DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims map[string]json.RawMessage
	if json.Unmarshal(payload, &claims) != nil {
		return false
	}
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := claims[name]; ok && (len(v) == 0 || v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
			return false
		}
	}
	return true
}

func (a *authenticator) user(raw string) (principal, error) {
	var claims jwt.RegisteredClaims
	if _, err := a.parser.ParseWithClaims(raw, &claims, a.keyFunc); err != nil {
		return principal{}, errUnauthorized("the token is not valid")
	}
	if !numericDates(raw) {
		return principal{}, errUnauthorized("the token's exp, nbf and iat must be JSON numbers (RFC 7519 NumericDate)")
	}
	u, err := domain.NewUserID(claims.Subject)
	if err != nil {
		return principal{}, errUnauthorized("the token's sub is not a valid user id")
	}
	return principal{name: "user:" + u.String(), user: u}, nil
}
