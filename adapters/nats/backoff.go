package nats

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is an exponential delay between failed attempts: it doubles
// from min up to max, with up to a fifth of jitter so that relays restarted
// together do not retry in step (a delay never exceeds max: at max the
// jitter shortens it). It is not safe for concurrent use.
type backoff struct {
	min, max, cur time.Duration
}

// next returns the delay before the next attempt and doubles the one after.
func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	jitter := time.Duration(rand.Int64N(int64(d)/5 + 1))
	if d+jitter > b.max {
		return b.max - jitter
	}
	return d + jitter
}

// reset starts again from min (after an attempt that made progress).
func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
