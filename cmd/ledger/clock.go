package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/interactionledger/ledger/domain"
)

// clockBehindWarning is how far behind the log's last recorded_at a clock
// must be for the server to warn: less is a clock stepped back (NTP) or
// another process's clock a little behind, which recorded_at absorbs.
const clockBehindWarning = time.Minute

// clockWarnEvery is how often the warning is repeated while it lasts.
const clockWarnEvery = time.Hour

// clockWatch warns when the log's last event was recorded by a clock far
// ahead of this one's (a node whose clock was once years ahead): every
// event appended is then recorded at that time (recorded_at never goes
// back along the log) until the clock reaches it, which nothing else
// would tell the operator. It warns at open, when a commit first meets
// it, every clockWarnEvery while it lasts, and says when it has ended;
// the metric ledger_store_clock_behind_seconds shows it at each commit.
type clockWatch struct {
	log *slog.Logger

	mu     sync.Mutex
	warned time.Time // when it last warned; zero: not behind
}

// atOpen warns when the log's last event was recorded ahead of the clock
// the store records by (domain.NowOf: on PostgreSQL the database server's,
// which may differ from this node's).
func (c *clockWatch) atOpen(ctx context.Context, store domain.EventStore) {
	last, err := store.LastPosition(ctx)
	if err != nil || last == 0 {
		return
	}
	e, err := domain.EventAt(ctx, store, last)
	if err != nil || e.RecordedAt.IsZero() {
		return
	}
	now, err := domain.NowOf(ctx, store)
	if err != nil {
		return
	}
	c.observe(e.RecordedAt.Sub(now), e.RecordedAt)
}

// observe notes a commit (or the open) whose clock was behind by behind
// the time recorded, at which its events were recorded.
func (c *clockWatch) observe(behind time.Duration, recorded time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if behind < clockBehindWarning {
		if !c.warned.IsZero() {
			c.log.Info("the clock has reached the log's last recorded_at: events are recorded at their own time again",
				"recorded_at", recorded)
			c.warned = time.Time{}
		}
		return
	}
	if now := time.Now(); c.warned.IsZero() || now.Sub(c.warned) >= clockWarnEvery {
		c.warned = now
		c.log.Warn("the log's last event was recorded ahead of this clock (a clock once far ahead recorded it): "+
			"every event appended is recorded at that time, not its own, until the clock reaches it (recorded_at never goes back)",
			"recorded_at", recorded, "clock", recorded.Add(-behind), "behind", behind)
	}
}
