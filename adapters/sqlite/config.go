package sqlite

import (
	"errors"
	"fmt"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultSynchronous = "FULL"
	DefaultMaxBatch    = 1024
	DefaultMaxDelay    = time.Millisecond // measured: halves commits at 16 and 256 appenders
	DefaultBusyTimeout = 5 * time.Second
	// DefaultTargetIndexEvery: a commit that leaves this many streams
	// outside the stream indexes indexes them, ~once per 4096 new streams.
	DefaultTargetIndexEvery = 4096
)

// Config configures an EventStore. The zero value with a Path is usable.
type Config struct {
	// Path is the database file; it and its directory are created if
	// missing.
	Path string
	// Synchronous is the log's durability: "FULL" (default, every commit
	// survives power loss) or "NORMAL" (a power loss may drop the last
	// commits, never corrupt).
	Synchronous string
	// MaxBatch bounds the appends gathered into one group commit.
	MaxBatch int
	// MaxDelay is how long the writer may linger to gather more appends
	// when appenders are concurrent (the previous batch held several); it
	// stops as soon as the batch is as large as the previous one, and never
	// delays a lone appender. Zero means DefaultMaxDelay; a negative value
	// turns lingering off (appends queued during a commit still form the
	// next batch).
	MaxDelay time.Duration
	// BusyTimeout is how long a statement waits for another process's
	// lock before failing with domain.ErrUnavailable.
	BusyTimeout time.Duration
	// TargetIndexEvery is how many new streams may wait outside the
	// stream indexes (stream_targets, stream_users) before a commit adds
	// them, in bulk and in key order, inside its own transaction; reads by
	// target or user scan the waiting streams, and the writer holds their
	// identities in memory. Zero means DefaultTargetIndexEvery.
	TargetIndexEvery int
	// ReadOnly opens the file without a writer: reads only, Append fails
	// with domain.ErrUnavailable, no migrations run.
	ReadOnly bool
	// OnCommit, when set, is called after each commit attempt by the
	// goroutine that made it (the writer, or a lone appender), never two
	// at once; it must be fast and must not call the store's Append.
	OnCommit func(CommitStats)
	// OnCheckpoint, when set, is called after each WAL checkpoint of the
	// log (which runs on a connection of its own, never inside a commit)
	// with how long it took and its error, nil on success.
	OnCheckpoint func(took time.Duration, err error)

	// checkpointPages is the WAL pages that wait for a checkpoint; zero
	// means walAutocheckpoint. Tests set it lower.
	checkpointPages int64
	// now is the clock events are recorded by; nil means time.Now. Tests
	// step it (an NTP step, another machine's clock).
	now func() time.Time
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

// Validate reports every problem with c, each wrapping domain.ErrInvalidInput,
// joined with errors.Join; nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("sqlite config: "+format+": %w", append(args, domain.ErrInvalidInput)...))
	}
	if c.Path == "" {
		bad("path is required")
	}
	switch c.Synchronous {
	case "", "FULL", "NORMAL":
	default:
		bad("synchronous %q must be FULL or NORMAL", c.Synchronous)
	}
	if c.MaxBatch < 0 {
		bad("max batch %d must be >= 0", c.MaxBatch)
	}
	if c.BusyTimeout < 0 {
		bad("busy timeout %s must be >= 0", c.BusyTimeout)
	}
	if c.TargetIndexEvery < 0 {
		bad("target index every %d must be >= 0", c.TargetIndexEvery)
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	if c.Synchronous == "" {
		c.Synchronous = DefaultSynchronous
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxDelay == 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.BusyTimeout == 0 {
		c.BusyTimeout = DefaultBusyTimeout
	}
	if c.TargetIndexEvery == 0 {
		c.TargetIndexEvery = DefaultTargetIndexEvery
	}
	if c.checkpointPages == 0 {
		c.checkpointPages = walAutocheckpoint
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}
