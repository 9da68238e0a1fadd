package nats

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
)

// Defaults of Config.
const (
	DefaultStream           = "LEDGER"
	DefaultSubjectPrefix    = "ledger.events"
	DefaultLockBucket       = "ledger_relay_locks"
	DefaultLockTTL          = 10 * time.Second
	DefaultBackoffMin       = 250 * time.Millisecond
	DefaultBackoffMax       = 30 * time.Second
	DefaultPublishTimeout   = 5 * time.Second
	DefaultPollInterval     = 250 * time.Millisecond
	DefaultProgressInterval = 10 * time.Second
	// MinPollInterval is the shortest PollInterval.
	MinPollInterval = time.Millisecond
)

// Config configures a Relay. Zero fields take the defaults above.
type Config struct {
	// URL of the NATS server(s), comma-separated; default nats://127.0.0.1:4222.
	URL string
	// Stream is the JetStream stream, created if absent with the subjects
	// <SubjectPrefix>.> and file storage. It must hold nothing but the
	// relay's messages.
	Stream string
	// SubjectPrefix: each event goes to <SubjectPrefix>.<kind>.<target_type>.
	SubjectPrefix string
	// Replicas of the stream and of the lock bucket when the relay creates
	// them (a clustered NATS); default 1.
	Replicas int
	// LockBucket is the key-value bucket holding the relay lock; the key is
	// the stream's name.
	LockBucket string
	// LockTTL is how long a lock outlives its last refresh: a standby
	// takes over this long after a relay died. It is refreshed every third
	// of it.
	LockTTL time.Duration
	// BackoffMin and BackoffMax bound the exponential delay between
	// attempts after a failure (NATS unreachable, a publish failed).
	BackoffMin, BackoffMax time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement.
	PublishTimeout time.Duration
	// PollInterval is how often the log is read when no commit of this
	// process woke the tail (another process writes the log).
	PollInterval time.Duration
	// BatchSize is how many events one read of the log returns at most.
	BatchSize int
	// ProgressInterval is how often progress is logged.
	ProgressInterval time.Duration
	// Metrics receives the relay's figures; nil records none.
	Metrics *Metrics
}

func (c *Config) defaults() {
	def := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	if c.URL == "" {
		c.URL = natsgo.DefaultURL
	}
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.LockBucket == "" {
		c.LockBucket = DefaultLockBucket
	}
	def(&c.LockTTL, DefaultLockTTL)
	def(&c.BackoffMin, DefaultBackoffMin)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.PublishTimeout, DefaultPublishTimeout)
	def(&c.PollInterval, DefaultPollInterval)
	def(&c.ProgressInterval, DefaultProgressInterval)
}

// Validate reports every problem with the config (after defaults), joined;
// each is a *domain.ValidationError naming the field.
func (c Config) Validate() error {
	c.defaults()
	var errs []error
	bad := func(field, reason string) {
		errs = append(errs, &domain.ValidationError{Field: field, Reason: reason})
	}
	if err := checkURLs(c.URL); err != nil {
		bad("URL", quote(RedactURL(c.URL))+" "+err.Error())
	}
	if !isName(c.Stream) {
		bad("Stream", quote(c.Stream)+" must be 1-64 of A-Z a-z 0-9 _ -")
	}
	if !isName(c.LockBucket) {
		bad("LockBucket", quote(c.LockBucket)+" must be 1-64 of A-Z a-z 0-9 _ -")
	}
	if !isSubjectPrefix(c.SubjectPrefix) {
		bad("SubjectPrefix", quote(c.SubjectPrefix)+" must be dot-separated tokens of A-Z a-z 0-9 _ - (no wildcards, no empty token)")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		bad("Replicas", "must be 1..5 (JetStream's limit)")
	}
	if c.LockTTL < time.Second {
		bad("LockTTL", "must be >= 1s")
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		bad("Backoff", "need 0 < BackoffMin <= BackoffMax")
	}
	if c.PublishTimeout < 0 || c.PollInterval < 0 || c.ProgressInterval < 0 || c.BatchSize < 0 {
		bad("Config", "durations and BatchSize must be >= 0")
	}
	if c.PollInterval < MinPollInterval {
		bad("PollInterval", fmt.Sprintf("%s must be >= %s (shorter only spins on an idle log)", c.PollInterval, MinPollInterval))
	}
	return errors.Join(errs...)
}

func quote(s string) string { return `"` + s + `"` }

// RedactURL is a NATS server list for logs and messages: each URL's
// password, or a token given as its user (nats://TOKEN@host), replaced by
// "xxxxx". A part that does not parse is named, not shown.
func RedactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, raw := range parts {
		u := strings.TrimSpace(raw)
		withScheme := u
		if !strings.Contains(u, "://") {
			withScheme = "nats://" + u
		}
		p, err := url.Parse(withScheme)
		switch {
		case err != nil:
			parts[i] = "(a URL that does not parse)"
		case p.User == nil:
			parts[i] = u
		default:
			if _, hasPassword := p.User.Password(); hasPassword {
				p.User = url.UserPassword(p.User.Username(), "xxxxx")
			} else {
				p.User = url.User("xxxxx")
			}
			parts[i] = p.String()
		}
	}
	return strings.Join(parts, ",")
}

// checkURLs checks each comma-separated server URL as the NATS client
// reads it (a bare host:port takes the first URL's scheme, nats:// when
// that one is bare too). The client refuses a list that mixes websocket
// (ws, wss) and other URLs at every connection attempt: a relay would
// retry it for ever.
func checkURLs(urls string) error {
	firstScheme := ""
	for u := range strings.SplitSeq(urls, ",") {
		u = strings.TrimSpace(u)
		if !strings.Contains(u, "://") {
			u = cmp.Or(firstScheme, "nats") + "://" + u
		}
		p, err := url.Parse(u)
		if err != nil {
			// url.Error quotes the whole URL, password included: only its cause.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return fmt.Errorf("is not a URL: %v", err)
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return fmt.Errorf("has scheme %q: want nats, tls, ws or wss", p.Scheme)
		}
		firstScheme = cmp.Or(firstScheme, p.Scheme)
		if isWebsocket(p.Scheme) != isWebsocket(firstScheme) {
			return errors.New("mixes websocket (ws, wss) and other (nats, tls) URLs, which the NATS client refuses")
		}
		if p.Hostname() == "" {
			return errors.New("names no host")
		}
		if port := p.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("has port %q: want 1..65535", port)
			}
		}
	}
	return nil
}

func isWebsocket(scheme string) bool { return scheme == "ws" || scheme == "wss" }

// isName reports whether s is a safe stream or bucket name.
func isName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !isTokenRune(r) {
			return false
		}
	}
	return true
}

// isSubjectPrefix reports whether s is one or more literal subject tokens.
func isSubjectPrefix(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for tok := range strings.SplitSeq(s, ".") {
		if !isName(tok) {
			return false
		}
	}
	return true
}

func isTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
}
