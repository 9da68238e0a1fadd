package groupcommit

import (
	"log/slog"
	"sync"
	"time"
)

// FailureLogEvery is how often a run of failed commits is logged after its
// first failure.
const FailureLogEvery = 10 * time.Second

// FailureLog logs a store's failed group commits without flooding: the
// first failure of a run at once, then at most one line every
// FailureLogEvery saying how many commits failed since; the commit that
// ends the run says how many failed in all. A full disk under heavy
// traffic logged every refused batch. It is safe for concurrent use; the
// zero value needs Log set.
type FailureLog struct {
	Log *slog.Logger

	mu     sync.Mutex
	failed int       // commits failed in this run
	logged int       // of which were logged or counted in a line
	last   time.Time // when the last line was written
}

// Failed records a failed commit of appends appends.
func (f *FailureLog) Failed(appends int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed++
	now := time.Now()
	switch {
	case f.failed == 1:
		f.Log.Error("group commit failed", "appends", appends, "err", err)
	case now.Sub(f.last) >= FailureLogEvery:
		f.Log.Error("group commits still failing", "failed_since_last_line", f.failed-f.logged, "failed_in_all", f.failed, "err", err)
	default:
		return
	}
	f.logged, f.last = f.failed, now
}

// Succeeded ends a run of failures, if any, with a line saying so.
func (f *FailureLog) Succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed > 0 {
		f.Log.Info("group commits succeed again", "failed_in_all", f.failed)
		f.failed, f.logged = 0, 0
	}
}
