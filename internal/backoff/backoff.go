package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential delay between failed attempts: it doubles
// from Min up to Max, with up to a fifth of jitter so that processes
// restarted together do not retry in step (a delay never exceeds Max: at
// Max the jitter shortens it). It is not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the delay before the next attempt and doubles the one after.
func (b *Backoff) Next() time.Duration {
	if b.cur < b.Min {
		b.cur = b.Min
	}
	d := b.cur
	b.cur = min(b.cur*2, b.Max)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if d+jitter > b.Max {
		return b.Max - jitter
	}
	return d + jitter
}

// Reset starts again from Min (after an attempt that made progress).
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d or until ctx ends; it reports whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
