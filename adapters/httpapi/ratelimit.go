package httpapi

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// userLimits is the per-user write rate limit: one token bucket per user.
// Buckets of idle users are swept when the map grows. It is safe for
// concurrent use; a nil *userLimits allows everything.
type userLimits struct {
	rate  rate.Limit
	burst int
	mu    sync.Mutex
	users map[string]*rate.Limiter
}

// maxIdleUsers bounds the bucket map between sweeps.
const maxIdleUsers = 100_000

func newUserLimits(perSecond float64, burst int) *userLimits {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(perSecond)))
	}
	return &userLimits{rate: rate.Limit(perSecond), burst: burst, users: map[string]*rate.Limiter{}}
}

// allow takes one token from user's bucket. When the bucket is empty it
// takes nothing and returns how long until a token is there.
func (l *userLimits) allow(user string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.users[user]
	if !ok {
		if len(l.users) >= maxIdleUsers {
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
// nothing, since a new bucket starts full.
func (l *userLimits) sweep(now time.Time) {
	for u, lim := range l.users {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.users, u)
		}
	}
}
