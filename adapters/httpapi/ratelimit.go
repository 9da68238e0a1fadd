package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userLimits is the per-user write rate limit: one token bucket per user.
// Buckets of idle users are swept when the map has doubled since the last
// sweep, so a flood of new users costs each O(1) amortised; past maxUsers,
// a sweep that frees too little also forgets some busy users (whose next
// write finds a full bucket: a lenient slip, never a refusal). It is safe
// for concurrent use; a nil *userLimits allows everything.
type userLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	users map[string]*rate.Limiter
	// sweepAt is the map size that starts the next sweep; sweeps counts
	// them.
	sweepAt int
	sweeps  int
	// latest is the latest time allow was given: callers read the clock
	// before taking mu, so their times reach it out of order, and
	// rate.Limiter counts time twice when its clock goes back.
	latest time.Time
}

// maxIdleUsers is the map size of the first sweep; maxUsers bounds the map.
var (
	maxIdleUsers = 100_000
	maxUsers     = 1_000_000
)

func newUserLimits(perSecond float64, burst int) *userLimits {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &userLimits{rate: rate.Limit(perSecond), burst: burst, users: map[string]*rate.Limiter{}, sweepAt: maxIdleUsers}
}

// allow takes one token from user's bucket. When the bucket is empty it
// takes nothing and returns how long until a token is there.
func (l *userLimits) allow(user string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.latest) {
		now = l.latest
	}
	l.latest = now
	lim, ok := l.users[user]
	if !ok {
		if len(l.users) >= l.sweepAt {
			l.sweep(now)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.users[user] = lim
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets users whose bucket is full again: forgetting them changes
// nothing, since a new bucket starts full. Then, when the map is still at
// maxUsers, it forgets a tenth of it, whichever users (map order). The next
// sweep waits until the map has doubled.
func (l *userLimits) sweep(now time.Time) {
	l.sweeps++
	for u, lim := range l.users {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.users, u)
		}
	}
	if len(l.users) >= maxUsers {
		drop := len(l.users) - maxUsers*9/10
		for u := range l.users {
			if drop == 0 {
				break
			}
			delete(l.users, u)
			drop--
		}
	}
	l.sweepAt = min(maxUsers, max(maxIdleUsers, 2*len(l.users)))
}
