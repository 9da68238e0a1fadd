package postgres

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultMaxBatch = 1024
	// DefaultMaxDelay is how long the writer lingers for more appends when
	// appenders are concurrent, as on SQLite.
	DefaultMaxDelay = time.Millisecond
	// DefaultPollInterval is the listener's safety net: with no
	// notification for this long it reads the head itself.
	DefaultPollInterval = 5 * time.Second
	// DefaultMaxConns bounds the pool (writer, reads); the listener has a
	// connection of its own.
	DefaultMaxConns = 8
	// DefaultHeadLockTimeout is Config.HeadLockTimeout's default.
	DefaultHeadLockTimeout = 10 * time.Second
)

// Config configures an EventStore. The zero value with a URL is usable.
type Config struct {
	// URL is the PostgreSQL connection string, postgres://... or
	// postgresql://... (libpq key=value strings work too).
	URL string
	// Schema holds the ledger's tables; it is created when missing. Empty
	// means the URL's search_path parameter when it names one schema, else
	// "public".
	Schema string
	// MaxBatch bounds the appends gathered into one group commit.
	MaxBatch int
	// MaxDelay is how long the writer may linger to gather more appends
	// when appenders are concurrent; a negative value turns it off.
	MaxDelay time.Duration
	// PollInterval is how long the listener waits for a notification
	// before it reads the head itself (a lost notification is caught then).
	PollInterval time.Duration
	// MaxConns bounds the connection pool; zero means the URL's
	// pool_max_conns, or DefaultMaxConns when the URL has none.
	MaxConns int32
	// HeadLockTimeout bounds a group commit's wait for the head row: a
	// process stuck inside its transaction (frozen, partitioned) must not
	// hold every writer of the cluster for longer; the appends then fail
	// with domain.ErrUnavailable.
	HeadLockTimeout time.Duration
	// ReadOnly opens an existing store for reads only: no migrations and
	// no writer (Append fails with domain.ErrUnavailable); Committed still
	// fires on other processes' commits, for tailers such as the relay.
	ReadOnly bool
	// OnCommit, when set, is called by the writer after each commit
	// attempt; it must be fast and must not call the store's Append.
	OnCommit func(CommitStats)
}

// CommitStats describes one group commit.
type CommitStats struct {
	Appends  int           // appends in the transaction (committed or failed alone)
	Failed   int           // appends that failed on their own (conflicts, duplicates)
	Events   int           // events committed
	Duration time.Duration // from BEGIN to the end of COMMIT
	Err      error         // non-nil when the whole transaction failed
	// ClockBehind is how far the clock the commit's events were to be
	// recorded by was behind the log's last event's recorded_at, which
	// they were recorded at instead (recorded_at never goes back along the
	// log); 0 when it was not. A large one means an event recorded by a
	// clock far ahead (a node's, once) pins every later event's time.
	ClockBehind time.Duration
	// RecordedAt is when the commit's events were recorded (zero when the
	// whole transaction failed before it read its clock).
	RecordedAt time.Time
}

// schemaName is what Config.Schema accepts: a plain, unquoted identifier.
var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate reports every problem with c, each wrapping
// domain.ErrInvalidInput, joined with errors.Join; nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("postgres config: "+format+": %w", append(args, domain.ErrInvalidInput)...))
	}
	if strings.TrimSpace(c.URL) == "" {
		bad("URL is required")
	}
	if c.Schema != "" && !schemaName.MatchString(c.Schema) {
		bad("schema %q must be a lower-case identifier (letters, digits, _)", c.Schema)
	}
	if c.MaxBatch < 0 {
		bad("max batch %d must be >= 0", c.MaxBatch)
	}
	if c.PollInterval < 0 {
		bad("poll interval %s must be >= 0", c.PollInterval)
	}
	if c.MaxConns < 0 {
		bad("max conns %d must be >= 0", c.MaxConns)
	}
	if c.HeadLockTimeout < 0 {
		bad("head lock timeout %s must be >= 0", c.HeadLockTimeout)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.HeadLockTimeout == 0 {
		c.HeadLockTimeout = DefaultHeadLockTimeout
	}
	return c
}

// IsURL reports whether db names a PostgreSQL database rather than a file:
// a postgres:// or postgresql:// URL.
func IsURL(db string) bool { return dburl.IsPostgres(db) }
