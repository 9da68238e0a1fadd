package failurelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Every is how often a run of failures is logged after its first failure.
const Every = 10 * time.Second

// Log logs a run of failures of one repeated operation without flooding:
// the first failure of a run at once, then at most one line every Every
// saying how many failed since; the success that ends the run says how
// many failed in all. A full disk under heavy traffic logged every refused
// commit, and a database outage every poll of a tail. It is safe for
// concurrent use; the zero value needs Logger and What set.
type Log struct {
	Logger *slog.Logger
	// What names the operation: "group commit", "reading the event log".
	What string
	// Level is that of the failure lines (Info for the success).
	Level slog.Level

	mu     sync.Mutex
	failed int       // failures in this run
	logged int       // of which were logged or counted in a line
	last   time.Time // when the last line was written
}

// Failed records a failure with err and attrs (key-value pairs of the
// first line).
func (f *Log) Failed(err error, attrs ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed++
	now := time.Now()
	switch {
	case f.failed == 1:
		f.Logger.Log(context.Background(), f.Level, f.What+" failed", append(attrs, "err", err)...)
	case now.Sub(f.last) >= Every:
		f.Logger.Log(context.Background(), f.Level, f.What+" still failing",
			"failed_since_last_line", f.failed-f.logged, "failed_in_all", f.failed, "err", err)
	default:
		return
	}
	f.logged, f.last = f.failed, now
}

// Succeeded ends a run of failures, if any, with a line saying so.
func (f *Log) Succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed > 0 {
		f.Logger.Info(f.What+" works again", "failed_in_all", f.failed)
		f.failed, f.logged = 0, 0
	}
}
