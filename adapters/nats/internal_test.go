package nats

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/nats-io/nats.go/jetstream"
)

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

// hangingLog is a log whose database stopped answering: every read blocks
// until its context ends.
type hangingLog struct{ domain.Tailable }

func (hangingLog) LastPosition(ctx context.Context) (int64, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

// A log whose head cannot be read is reported (a warning, a counted
// failure) instead of a relay that looks caught up for ever.
func TestWatchHeadReportsAnUnansweringLog(t *testing.T) {
	defer func(t0, w time.Duration) { headReadTimeout, headWarnEvery = t0, w }(headReadTimeout, headWarnEvery)
	headReadTimeout, headWarnEvery = 20*time.Millisecond, time.Hour
	var buf bytes.Buffer // watchHead runs on this goroutine
	m := NewMetrics()
	r := &Relay{store: hangingLog{}, cfg: Config{Metrics: m}, log: slog.New(slog.NewTextHandler(&buf, nil))}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r.watchHead(ctx, func(error) {})
	if !strings.Contains(buf.String(), "the log's head cannot be read") {
		t.Fatalf("no warning logged:\n%s", buf.String())
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if strings.Contains(rec.Body.String(), "ledger_relay_head_read_failures_total 0") || !strings.Contains(rec.Body.String(), "ledger_relay_head_read_failures_total") {
		t.Fatalf("head read failures not counted")
	}
}

// endingBucket is a lock bucket whose update is in flight when its
// session ends: it ends the session, then blocks until its context ends.
type endingBucket struct {
	jetstream.KeyValue
	end func()
}

func (b endingBucket) Update(ctx context.Context, _ string, _ []byte, _ uint64) (uint64, error) {
	b.end()
	<-ctx.Done()
	return 0, ctx.Err()
}

// A session that ends while a refresh of its lock is in flight (stopped,
// or its publish failed) says nothing about that refresh: it logged
// "refreshing the relay lock failed; trying again" with "context
// canceled" as it stopped.
func TestKeepSaysNothingWhenItsSessionEnds(t *testing.T) {
	var buf bytes.Buffer // keep runs on this goroutine
	ctx, cancel := context.WithCancelCause(context.Background())
	kv := endingBucket{end: func() { cancel(nil) }}
	l := &lock{kv: kv, key: "k", ttl: 60 * time.Millisecond, log: slog.New(slog.NewTextHandler(&buf, nil))}
	l.keep(ctx, cancel)
	if buf.Len() > 0 {
		t.Fatalf("keep logged as its session ended:\n%s", buf.String())
	}
}
