package nats

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestBackoffDoublesUpToMaxWithJitter(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 800 * time.Millisecond}
	for i, base := range []time.Duration{100, 200, 400, 800, 800} {
		base *= time.Millisecond
		if d := b.next(); d < base || d > base+base/5 {
			t.Fatalf("attempt %d: delay %s, want %s plus at most a fifth", i+1, d, base)
		}
	}
	b.reset()
	if d := b.next(); d > 120*time.Millisecond {
		t.Fatalf("after reset: %s, want about the minimum", d)
	}
}

func TestProgressLogsPositionAndLag(t *testing.T) {
	var buf bytes.Buffer
	r := &Relay{cfg: Config{ProgressInterval: time.Nanosecond}, log: slog.New(slog.NewTextHandler(&buf, nil))}
	r.head.Store(120)
	p := newProgress(r, 0)
	time.Sleep(time.Millisecond)
	p.tick(context.Background(), 100)
	line := buf.String()
	for _, want := range []string{"relay progress", "position=100", "log_position=120", "lag=20", "published=1"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line lacks %q: %s", want, line)
		}
	}
}
