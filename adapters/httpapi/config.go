package httpapi

import (
	"crypto"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// MaxBodyBytes bounds a write's JSON body (docs/api.md: at most 4 KiB).
const MaxBodyBytes = 4 << 10

// Config configures a Server. Start from DefaultConfig and set Kinds.
type Config struct {
	// Listen is the TCP address to listen on, host:port. A host that is not
	// loopback requires tokens (Auth.Enabled).
	Listen string
	// Kinds is the configured set of interaction kinds.
	Kinds domain.KindSet
	// StartPosition is the log head when the process started: no /v1 read
	// or write answers until the read model has applied it.
	StartPosition int64
	// ConsistencyTimeout bounds how long a request waits for the read model
	// (min_position, read-your-writes) before answering 503.
	ConsistencyTimeout time.Duration
	// ReadyLag bounds how far behind the log head the read model may be for
	// /readyz to answer 200.
	ReadyLag time.Duration
	// Auth holds the tokens; its zero value means no authentication.
	Auth AuthConfig
	// CORS lets browser clients on other origins call the API; off by
	// default.
	CORS CORSConfig
	// PublicHistory lets the read scope (and JWT users) read /v1/events*.
	PublicHistory bool
	// WriteRate is the per-user write rate in requests per second; 0 is off.
	WriteRate float64
	// WriteBurst is how many writes a user may make at once; 0 means
	// max(1, WriteRate).
	WriteBurst int
	// Heartbeat is the interval of the SSE heartbeat comment.
	Heartbeat time.Duration
	// StreamBuffer is how many events an SSE client may fall behind before
	// it is dropped.
	StreamBuffer int
	// DrainTimeout bounds the graceful shutdown of in-flight requests.
	DrainTimeout time.Duration
	// MaxConnections bounds the open connections (0: no bound). Past it a
	// new connection waits in the kernel's listen backlog until one
	// closes, and until the server is back under three quarters of the
	// bound it closes connections idle for a second, so that idle
	// keep-alive clients do not hold the newcomers out.
	MaxConnections int
	// MaxStreams bounds the live event streams, which hold a connection
	// each for as long as they run; past it a stream is answered 503
	// overloaded. 0: half of MaxConnections (none when that is 0), so that
	// streams never take every connection and lock writes out.
	MaxStreams int
	// MaxInFlight bounds the requests being served at once, the live
	// streams and the probes (/healthz, /readyz, /metrics) aside; past it a
	// request is answered 503 overloaded at once, having done nothing
	// (0: no bound, the default). It helps only clients that wait out the
	// Retry-After: a load generator that retried at once got a third of
	// the answers served without it (docs/performance.md, "Overload").
	MaxInFlight int
	// Server timeouts; the SSE and export routes lift the write deadline.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
}

// DefaultConfig returns the defaults of `ledger serve`.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:8080",
		Kinds:              domain.MustKindSet(domain.DefaultKinds...),
		ConsistencyTimeout: 2 * time.Second,
		ReadyLag:           time.Second,
		Heartbeat:          15 * time.Second,
		StreamBuffer:       256,
		DrainTimeout:       10 * time.Second,
		ReadHeaderTimeout:  5 * time.Second,
		ReadTimeout:        15 * time.Second,
		WriteTimeout:       60 * time.Second,
		IdleTimeout:        120 * time.Second,
	}
}

// Validate returns every problem with c, joined, matching
// domain.ErrInvalidInput; nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	if len(c.Kinds.Names()) == 0 {
		errs = append(errs, errors.New("kinds: at least one kind is required"))
	}
	if c.StartPosition < 0 {
		errs = append(errs, errors.New("start position must be >= 0"))
	}
	for name, d := range map[string]time.Duration{
		"consistency timeout": c.ConsistencyTimeout, "ready lag": c.ReadyLag,
		"heartbeat": c.Heartbeat, "drain timeout": c.DrainTimeout,
		"read header timeout": c.ReadHeaderTimeout, "read timeout": c.ReadTimeout,
		"write timeout": c.WriteTimeout, "idle timeout": c.IdleTimeout,
	} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be > 0, got %v", name, d))
		}
	}
	if c.WriteTimeout > 0 && c.ConsistencyTimeout > c.WriteTimeout/2 {
		// A write waits for its commit and then up to ConsistencyTimeout
		// for its apply, and a read as long: an answer written past the
		// connection's write deadline reaches its client as an empty reply.
		errs = append(errs, fmt.Errorf("consistency timeout %v must be at most half the write timeout %v, "+
			"so that its 503 is answered in time", c.ConsistencyTimeout, c.WriteTimeout))
	}
	errs = append(errs, c.validateLimits())
	if c.StreamBuffer < 1 {
		errs = append(errs, fmt.Errorf("stream buffer must be >= 1, got %d", c.StreamBuffer))
	}
	errs = append(errs, c.validateWriteLimit(), c.Auth.Validate(), c.CORS.Validate(), c.validateListen())
	return invalidConfig(errors.Join(errs...))
}

// invalidConfig marks err, when not nil, as matching domain.ErrInvalidInput
// with errors.Is, keeping its message as it is.
func invalidConfig(err error) error {
	if err == nil {
		return nil
	}
	return configError{err}
}

type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

func (e configError) Is(target error) bool { return target == domain.ErrInvalidInput }

// validateLimits checks the connection, stream and in-flight bounds.
func (c Config) validateLimits() error {
	var errs []error
	for name, n := range map[string]int{"max connections": c.MaxConnections, "max streams": c.MaxStreams,
		"max in flight": c.MaxInFlight} {
		if n < 0 {
			errs = append(errs, fmt.Errorf("%s %d: must be >= 0 (0: no bound)", name, n))
		}
	}
	if c.MaxConnections > 0 && c.MaxStreams >= c.MaxConnections {
		errs = append(errs, fmt.Errorf("max streams %d must be below max connections %d: "+
			"live streams could take every connection and lock writes out", c.MaxStreams, c.MaxConnections))
	}
	return errors.Join(errs...)
}

// streamBound is the bound on live streams MaxStreams says (0: none).
func (c Config) streamBound() int {
	if c.MaxStreams > 0 || c.MaxConnections == 0 {
		return c.MaxStreams
	}
	return max(1, c.MaxConnections/2)
}

// validateWriteLimit names the bad one of WriteRate (NaN would turn the
// limit off, infinities mean nothing) and WriteBurst.
func (c Config) validateWriteLimit() error {
	var errs []error
	if c.WriteRate < 0 || math.IsNaN(c.WriteRate) || math.IsInf(c.WriteRate, 0) {
		errs = append(errs, fmt.Errorf("write rate %v: want a finite number >= 0 (0: no limit)", c.WriteRate))
	}
	if c.WriteBurst < 0 {
		errs = append(errs, fmt.Errorf("write burst %d must be >= 0", c.WriteBurst))
	}
	return errors.Join(errs...)
}

func (c Config) validateListen() error {
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	// A number 0..65535 or a service name ("http"), as net.Listen takes.
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("listen %q: port %q: want a number from 0 to 65535 or a service name", c.Listen, port)
	}
	if !c.Auth.Enabled() && !IsLoopback(host) {
		return fmt.Errorf("listen %q is not a loopback address: configure tokens (--tokens-file, --jwt-secret or --jwt-public-key) to serve beyond this machine", c.Listen)
	}
	return nil
}

// IsLoopback reports whether host (no port) names only this machine:
// "localhost" or a loopback IP. An empty host means every interface.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AuthConfig holds the credentials the server accepts. With no tokens and
// no JWT key every endpoint is open (loopback only).
type AuthConfig struct {
	// Tokens are the service tokens (--tokens-file).
	Tokens []Token
	// JWTSecret verifies HS256 user tokens.
	JWTSecret []byte
	// JWTPublicKey verifies RS256 (*rsa.PublicKey) or EdDSA
	// (ed25519.PublicKey) user tokens.
	JWTPublicKey crypto.PublicKey
	// JWTAudience, when set, must be one of a user token's aud values.
	JWTAudience string
	// JWTIssuer, when set, must be a user token's iss.
	JWTIssuer string
}

// Enabled reports whether any credential is configured, so that requests
// must authenticate.
func (a AuthConfig) Enabled() bool {
	return len(a.Tokens) > 0 || len(a.JWTSecret) > 0 || a.JWTPublicKey != nil
}

// jwtClaimsSet names the claims a checks that are set, each as its
// setting is named (cmd/ledger names the variable that set it).
func (a AuthConfig) jwtClaimsSet() string {
	var set []string
	if a.JWTAudience != "" {
		set = append(set, "the JWT audience")
	}
	if a.JWTIssuer != "" {
		set = append(set, "the JWT issuer")
	}
	return strings.Join(set, " and ")
}

// Validate returns every problem with a, joined.
func (a AuthConfig) Validate() error {
	var errs []error
	if len(a.JWTSecret) > 0 && a.JWTPublicKey != nil {
		errs = append(errs, errors.New("auth: set a JWT secret or a JWT public key, not both"))
	}
	if len(a.JWTSecret) > 0 && len(a.JWTSecret) < 32 {
		errs = append(errs, errors.New("auth: the JWT secret must be at least 32 bytes"))
	}
	if (a.JWTAudience != "" || a.JWTIssuer != "") && len(a.JWTSecret) == 0 && a.JWTPublicKey == nil {
		errs = append(errs, fmt.Errorf("auth: %s set, but no JWT secret or public key to check JWTs with", a.jwtClaimsSet()))
	}
	if a.JWTPublicKey != nil {
		if _, err := jwtMethodsFor(a.JWTPublicKey); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]string{} // secret → the token's label
	for i, t := range a.Tokens {
		label := t.label(i)
		if err := t.validate(); err != nil {
			errs = append(errs, fmt.Errorf("auth: %s: %w", label, err))
		}
		if first, ok := seen[t.Secret]; ok {
			errs = append(errs, fmt.Errorf("auth: %s repeats %s", label, first))
		}
		seen[t.Secret] = label
	}
	return invalidConfig(errors.Join(errs...))
}
