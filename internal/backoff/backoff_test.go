package backoff

import (
	"testing"
	"time"
)

func TestBackoffDoublesUpToMaxWithJitter(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	for i, base := range []time.Duration{100, 200, 400, 800, 800} {
		base *= time.Millisecond
		if d := b.Next(); d < base-base/5 || d > min(base+base/5, b.Max) {
			t.Fatalf("attempt %d: delay %s, want %s plus at most a fifth", i+1, d, base)
		}
	}
	for range 50 { // at max, the jitter shortens the delay: never beyond max
		if d := b.Next(); d > b.Max {
			t.Fatalf("delay %s beyond max %s", d, b.Max)
		}
	}
	b.Reset()
	if d := b.Next(); d > 120*time.Millisecond {
		t.Fatalf("after reset: %s, want about the minimum", d)
	}
}
