package nats_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/adapters/bus"
	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRelayEveryEventOnceInOrder(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	write(t, store, 300, "a")
	cfg := testConfig(url, n)
	cfg.Metrics = relaynats.NewMetrics()
	r := startRelay(t, store, cfg, nil)
	write(t, store, 300, "b") // while it runs
	total := len(logEvents(t, store))
	natstest.WaitHolds(t, js, n.Stream, total)
	waitFor(t, "the lag metric to reach 0", func() bool {
		return strings.Contains(scrape(t, cfg.Metrics), "ledger_relay_lag_events 0\n")
	})
	mustContainMetric(t, scrape(t, cfg.Metrics), "ledger_relay_position "+strconv.Itoa(total), "ledger_relay_lock_held 1")
	if err := r.stop(t); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	natstest.CheckIsLog(t, js, n, store.LogID(), logEvents(t, store))

	// Stopped, the log grows; a new relay resumes after the stream's last
	// message, repeating nothing.
	write(t, store, 200, "c")
	r = startRelay(t, store, cfg, nil)
	total = len(logEvents(t, store))
	natstest.WaitHolds(t, js, n.Stream, total)
	r.stop(t)
	natstest.CheckIsLog(t, js, n, store.LogID(), logEvents(t, store))
	if got := r.relay.Relayed(); got != int64(total) {
		t.Errorf("Relayed() = %d, want %d", got, total)
	}
}

func TestRelayHeadersAndDecoding(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	write(t, store, 40, "h")
	startRelay(t, store, testConfig(url, n), nil)
	events := logEvents(t, store)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	for i, m := range natstest.Messages(t, js, n.Stream) {
		// Exactly the four headers; the JetStream precondition is stored too.
		if len(m.Header) != 4 || m.Header.Get(natsgo.ExpectedLastSeqHdr) != strconv.FormatUint(m.Sequence-1, 10) ||
			m.Header.Get(relaynats.HeaderLog) != store.LogID() {
			t.Errorf("message %d: headers %v, want Nats-Msg-Id, Ledger-Position, Ledger-Log %s and Nats-Expected-Last-Sequence %d",
				i+1, m.Header, store.LogID(), m.Sequence-1)
		}
		// What a watermill consumer gets back is the logged event.
		msg, _ := relaynats.Marshaler{}.Unmarshal(&natsgo.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		e, err := bus.DecodeMessage(msg)
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		if e.ID != events[i].ID || e.Position != events[i].Position || e.Target != events[i].Target {
			t.Fatalf("message %d decodes to %+v, want %+v", i+1, e, events[i])
		}
	}
}

func TestRelaySecondRelayDoesNotDuplicate(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	cfg := testConfig(url, n)
	logA, bufA := bufLogger()
	logB, bufB := bufLogger()
	a := startRelay(t, store, cfg, logA)
	waitFor(t, "relay A to take the lock", func() bool { return strings.Contains(bufA.String(), "relay lock acquired") })
	b := startRelay(t, store, cfg, logB)
	waitFor(t, "relay B to wait", func() bool { return strings.Contains(bufB.String(), "waiting as a standby") })
	write(t, store, 500, "x")
	total := len(logEvents(t, store))
	natstest.WaitHolds(t, js, n.Stream, total)
	if strings.Contains(bufB.String(), "relay lock acquired") {
		t.Fatalf("relay B took the lock while A held it:\n%s", bufB)
	}
	natstest.CheckIsLog(t, js, n, store.LogID(), logEvents(t, store))

	// A stops (releasing its lock); B takes over where A left off.
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	write(t, store, 300, "y")
	total = len(logEvents(t, store))
	natstest.WaitHolds(t, js, n.Stream, total)
	b.stop(t)
	mustContainMetric(t, bufB.String(), "relay lock acquired")
	natstest.CheckIsLog(t, js, n, store.LogID(), logEvents(t, store))
}

// retryDelay matches the delay the relay logs before each retry.
var retryDelay = regexp.MustCompile(`retry_in=([0-9.]+m?s)`)

func TestRelayUnreachableNATSRetriesAndLosesNothing(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	addr := freeAddr(t) // nothing listens there yet
	cfg := testConfig("nats://"+addr, n)
	cfg.Metrics = relaynats.NewMetrics()
	log, buf := bufLogger()
	r := startRelay(t, store, cfg, log)
	write(t, store, 200, "p")
	waitFor(t, "four failed attempts", func() bool { return strings.Count(buf.String(), "relay failed") >= 4 })
	// Not relaying: its lag is unknown, not the whole log.
	head := "ledger_relay_log_position " + strconv.Itoa(len(logEvents(t, store))) + "\n"
	waitFor(t, "the head observed", func() bool { return strings.Contains(scrape(t, cfg.Metrics), head) })
	mustContainMetric(t, scrape(t, cfg.Metrics), "ledger_relay_lag_events NaN\n", "ledger_relay_position NaN\n")
	lines := buf.String()
	mustContainMetric(t, lines, "connect to NATS at nats://"+addr, "retrying from the stream's last message")
	var delays []time.Duration
	for _, m := range retryDelay.FindAllStringSubmatch(lines, -1) {
		d, _ := time.ParseDuration(m[1])
		delays = append(delays, d)
	}
	if len(delays) < 4 || delays[3] <= delays[0] {
		t.Errorf("retry delays %v do not grow:\n%s", delays, lines)
	}
	if natstest.Count(t, js, n.Stream) != 0 {
		t.Fatal("stream has messages although NATS was unreachable")
	}

	// NATS becomes reachable: everything written meanwhile arrives.
	p := startProxy(t, addr)
	total := len(logEvents(t, store))
	natstest.WaitHolds(t, js, n.Stream, total)

	// The connection breaks during a burst of writes, then comes back.
	done := make(chan struct{})
	go func() { write(t, store, 400, "q"); close(done) }()
	time.Sleep(30 * time.Millisecond)
	p.close()
	<-done
	time.Sleep(200 * time.Millisecond)
	startProxy(t, addr)
	total = len(logEvents(t, store))
	natstest.WaitHolds(t, js, n.Stream, total)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	natstest.CheckIsLog(t, js, n, store.LogID(), logEvents(t, store))
}

func TestRelayRefusesAStreamOfAnotherLog(t *testing.T) {
	url := natstest.MustURL(t)
	js := natstest.MustJetStream(t, url)
	ctx := context.Background()
	cases := map[string]func(t *testing.T, n natstest.Names){
		"OtherSubjects": func(t *testing.T, n natstest.Names) {
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: n.Stream, Subjects: []string{n.Prefix + ".like.>"}}); err != nil {
				t.Fatal(err)
			}
		},
		"ForeignMessage": func(t *testing.T, n natstest.Names) {
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: n.Stream, Subjects: []string{n.Prefix + ".>"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := js.Publish(ctx, n.Prefix+".like.article", []byte("{}")); err != nil {
				t.Fatal(err)
			}
		},
		"AnotherLog": func(t *testing.T, n natstest.Names) {
			other := mustStore(t)
			write(t, other, 80, "o")
			r := startRelay(t, other, testConfig(url, n), nil)
			natstest.WaitHolds(t, js, n.Stream, len(logEvents(t, other)))
			r.stop(t)
		},
	}
	for name, prepare := range cases {
		t.Run(name, func(t *testing.T) {
			n := natstest.UniqueNames(t, url)
			prepare(t, n)
			store := mustStore(t)
			write(t, store, 20, "m")
			log, buf := bufLogger()
			r := startRelay(t, store, testConfig(url, n), log)
			err := r.ended(t, 30*time.Second, func() string {
				return fmt.Sprintf("relay kept running on a stream of another log; log:\n%s", buf)
			})
			if !errors.Is(err, relaynats.ErrStreamMismatch) {
				t.Fatalf("Run = %v, want ErrStreamMismatch; log:\n%s", err, buf)
			}
			if !strings.Contains(err.Error(), n.Stream) {
				t.Errorf("error does not name the stream %s: %v", n.Stream, err)
			}
		})
	}
}

// A refusal of the server's that no retry changes stops Run with an error
// naming it, instead of retrying for ever: a lock bucket without a TTL (a
// dead relay's lock would never expire), replicas a single server cannot
// hold, subjects another stream takes.
func TestRelayStopsOnRefusals(t *testing.T) {
	url := natstest.MustURL(t)
	js := natstest.MustJetStream(t, url)
	ctx := context.Background()
	cases := map[string]struct {
		prepare func(t *testing.T, n natstest.Names, cfg *relaynats.Config)
		want    string
	}{
		"LockBucketWithoutTTL": {func(t *testing.T, n natstest.Names, _ *relaynats.Config) {
			if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: n.Bucket}); err != nil {
				t.Fatal(err)
			}
		}, "has no TTL"},
		"Replicas": {func(_ *testing.T, _ natstest.Names, cfg *relaynats.Config) { cfg.Replicas = 3 }, "replicas"},
		"SubjectsTaken": {func(t *testing.T, n natstest.Names, _ *relaynats.Config) {
			other := n.Stream + "_OTHER"
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: other, Subjects: []string{n.Prefix + ".>"}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { js.DeleteStream(context.Background(), other) })
		}, "overlap"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			n := natstest.UniqueNames(t, url)
			cfg := testConfig(url, n)
			c.prepare(t, n, &cfg)
			store := mustStore(t)
			write(t, store, 3, "r")
			log, buf := bufLogger()
			r := startRelay(t, store, cfg, log)
			err := r.ended(t, 20*time.Second, func() string { return fmt.Sprintf("relay kept retrying a refusal; log:\n%s", buf) })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run = %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// Passwords and tokens in the NATS URL never reach a log line or an error.
func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:S3cret@127.0.0.1:4222":              "nats://u:xxxxx@127.0.0.1:4222",
		"nats://T0ken@h1:4222, tls://a:b@h2":          "nats://xxxxx@h1:4222,tls://a:xxxxx@h2",
		"127.0.0.1:4222":                              "127.0.0.1:4222",
		"nats://127.0.0.1:4222,nats://127.0.0.1:4223": "nats://127.0.0.1:4222,nats://127.0.0.1:4223",
	} {
		if got := relaynats.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"http://u:S3cret@h", "nats://u:S3cret@127.0.0.1:abc", "nats://u:S3cret@[::1", "nats://h:1,nats://u:S3cret@x y:4222"} {
		err := relaynats.Config{URL: bad}.Validate()
		if err == nil || strings.Contains(err.Error(), "S3cret") {
			t.Errorf("Validate(%q) error shows the password: %v", bad, err)
		}
	}
	log, buf := bufLogger()
	store := mustStore(t)
	cfg := testConfig("nats://u:S3cret@"+freeAddr(t), natstest.UniqueNames(t, natstest.MustURL(t)))
	r := startRelay(t, store, cfg, log)
	waitFor(t, "a failed connection logged", func() bool { return strings.Contains(buf.String(), "relay failed") })
	r.stop(t)
	if strings.Contains(buf.String(), "S3cret") {
		t.Errorf("the log shows the password:\n%s", buf)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg   relaynats.Config
		field string
	}{
		"StreamWithDot":     {relaynats.Config{Stream: "a.b"}, "Stream"},
		"URLScheme":         {relaynats.Config{URL: "http://127.0.0.1:4222"}, "URL"},
		"URLNoHost":         {relaynats.Config{URL: "nats://"}, "URL"},
		"PrefixWildcard":    {relaynats.Config{SubjectPrefix: "ledger.*"}, "SubjectPrefix"},
		"PrefixEmptyToken":  {relaynats.Config{SubjectPrefix: "ledger..events"}, "SubjectPrefix"},
		"PrefixTrailingDot": {relaynats.Config{SubjectPrefix: "ledger."}, "SubjectPrefix"},
		"Replicas":          {relaynats.Config{Replicas: 6}, "Replicas"},
		"LockTTL":           {relaynats.Config{LockTTL: 10 * time.Millisecond}, "LockTTL"},
		"Bucket":            {relaynats.Config{LockBucket: "a b"}, "LockBucket"},
		"Backoff":           {relaynats.Config{BackoffMin: time.Second, BackoffMax: time.Millisecond}, "Backoff"},
		"URLPort":           {relaynats.Config{URL: "nats://127.0.0.1:99999"}, "URL"},
		"PollInterval":      {relaynats.Config{PollInterval: time.Nanosecond}, "PollInterval"},
		"URLMixesWebsocket": {relaynats.Config{URL: "nats://127.0.0.1:4222,ws://127.0.0.1:8080"}, "URL"},
		"URLBareAfterWS":    {relaynats.Config{URL: "127.0.0.1:4222,wss://127.0.0.1:8443"}, "URL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := c.cfg.Validate()
			var ve *domain.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("Validate() = %v, want a ValidationError on %s", err, c.field)
			}
		})
	}
	if err := (relaynats.Config{}).Validate(); err != nil {
		t.Errorf("the zero config (all defaults) is invalid: %v", err)
	}
	// A bare host:port takes the scheme of the list's first URL, as the
	// NATS client reads it.
	for _, ok := range []string{"ws://127.0.0.1:8080,127.0.0.1:8081", "nats://h1:4222,tls://h2:4222"} {
		if err := (relaynats.Config{URL: ok}).Validate(); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", ok, err)
		}
	}
}

func TestMarshaler(t *testing.T) {
	store := mustStore(t)
	write(t, store, 3, "m")
	e := logEvents(t, store)[2]
	msg := bus.NewMessage(e, true)
	msg.Metadata.Set(relaynats.MetaExpectedLastSequence, "41")
	msg.Metadata.Set(relaynats.MetaLog, store.LogID())
	nm, err := relaynats.Marshaler{}.Marshal("p.like.article", msg)
	if err != nil {
		t.Fatal(err)
	}
	want := natsgo.Header{}
	want.Set(natsgo.MsgIdHdr, e.ID.String())
	want.Set(relaynats.HeaderPosition, strconv.FormatInt(e.Position, 10))
	want.Set(natsgo.ExpectedLastSeqHdr, "41")
	want.Set(relaynats.HeaderLog, store.LogID())
	if nm.Subject != "p.like.article" || !equalHeaders(nm.Header, want) || string(nm.Data) != string(msg.Payload) {
		t.Fatalf("Marshal = %s %v %s", nm.Subject, nm.Header, nm.Data)
	}
	back, _ := relaynats.Marshaler{}.Unmarshal(nm)
	got, err := bus.DecodeMessage(back)
	if err != nil || got.ID != e.ID || got.Position != e.Position || back.Metadata.Get(relaynats.MetaLog) != store.LogID() {
		t.Fatalf("round trip = %+v (log %q), %v", got, back.Metadata.Get(relaynats.MetaLog), err)
	}
	if _, err := (relaynats.Marshaler{}).Marshal("s", message.NewMessage("x", nil)); !errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("a message without position: %v, want ErrInvalidInput", err)
	}
}

func equalHeaders(a, b natsgo.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if len(b[k]) != len(v) || b[k][0] != v[0] {
			return false
		}
	}
	return true
}

func scrape(t *testing.T, m *relaynats.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func mustContainMetric(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("lacks %q:\n%s", w, got)
		}
	}
}

// TestStalePublishStoresNothing plays a relay that stalled past its lock
// and wakes up to publish an event the stream already holds: whether
// JetStream's duplicate window or the expected-sequence precondition
// catches it, the stream is unchanged; and a publish after the wrong
// sequence is refused even with a fresh message id.
func TestStalePublishStoresNothing(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	write(t, store, 50, "s")
	events := logEvents(t, store)
	r := startRelay(t, store, testConfig(url, n), nil)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	r.stop(t)

	pub, err := wmnats.NewPublisher(wmnats.PublisherConfig{URL: url, Marshaler: relaynats.Marshaler{}}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	k := len(events) - 3
	stale := bus.NewMessage(events[k], true)
	stale.Metadata.Set(relaynats.MetaExpectedLastSequence, strconv.Itoa(k)) // what it expected then
	pub.Publish(n.Prefix+".like.article", stale)
	fresh := bus.NewMessage(events[k], true)
	fresh.UUID = "00000000-0000-7000-8000-000000000001"
	fresh.Metadata.Set(relaynats.MetaExpectedLastSequence, strconv.Itoa(k))
	if err := pub.Publish(n.Prefix+".like.article", fresh); err == nil || !strings.Contains(err.Error(), "wrong last sequence") {
		t.Errorf("publish after a stale sequence: %v, want JetStream's wrong last sequence", err)
	}
	natstest.CheckIsLog(t, js, n, store.LogID(), events)
}

// TestRelayStopsPublishingWhenItLosesItsLock takes the lock away from a
// running relay (as if it had expired during a stall and another relay
// had taken it): the relay notices at its next refresh, stops publishing
// and waits as a standby, while the new holder relays everything once.
func TestRelayStopsPublishingWhenItLosesItsLock(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	write(t, store, 100, "k")
	cfg := testConfig(url, n)
	logA, bufA := bufLogger()
	startRelay(t, store, cfg, logA)
	natstest.WaitHolds(t, js, n.Stream, len(logEvents(t, store)))

	ctx := context.Background()
	kv, err := js.KeyValue(ctx, n.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Purge(ctx, n.Stream); err != nil {
		t.Fatal(err)
	}
	logB, bufB := bufLogger()
	startRelay(t, store, cfg, logB)
	waitFor(t, "relay B to take the freed lock", func() bool { return strings.Contains(bufB.String(), "relay lock acquired") })
	waitFor(t, "relay A to notice", func() bool { return strings.Contains(bufA.String(), "relay lock lost") })
	waitFor(t, "relay A to wait as a standby", func() bool { return strings.Contains(bufA.String(), "waiting as a standby") })
	write(t, store, 200, "l")
	natstest.WaitHolds(t, js, n.Stream, len(logEvents(t, store)))
	natstest.CheckIsLog(t, js, n, store.LogID(), logEvents(t, store))
}

// A stream whose settings may remove its last message (an age limit, an
// interest or work-queue retention) leaves a relay that restarts no resume
// point: the relay refuses it at its first start, naming the setting,
// rather than relay into it and refuse it at some later restart.
func TestRelayRefusesAStreamThatMayDropItsLastMessage(t *testing.T) {
	url := natstest.MustURL(t)
	cases := map[string]struct {
		cfg  jetstream.StreamConfig
		want string
	}{
		"MaxAge":    {jetstream.StreamConfig{MaxAge: time.Hour}, "max age"},
		"Interest":  {jetstream.StreamConfig{Retention: jetstream.InterestPolicy}, "retention"},
		"WorkQueue": {jetstream.StreamConfig{Retention: jetstream.WorkQueuePolicy}, "retention"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r, _ := relayIntoStream(t, url, c.cfg, 5, nil)
			r.refuses(t, 10*time.Second, c.want, "a stream that may drop its last message")
		})
	}
}

// A stream whose last message was removed (a purge, a deletion) leaves a
// relay that restarts no resume point: it refuses to guess, naming it,
// instead of starting again from the log's first event or from after
// the message before it.
func TestRelayRefusesAStreamWhoseLastMessageIsGone(t *testing.T) {
	url := natstest.MustURL(t)
	js := natstest.MustJetStream(t, url)
	cases := map[string]func(ctx context.Context, s jetstream.Stream, last uint64) error{
		"Purged":      func(ctx context.Context, s jetstream.Stream, _ uint64) error { return s.Purge(ctx) },
		"LastDeleted": func(ctx context.Context, s jetstream.Stream, last uint64) error { return s.DeleteMsg(ctx, last) },
	}
	for name, remove := range cases {
		t.Run(name, func(t *testing.T) {
			n := natstest.UniqueNames(t, url)
			store := mustStore(t)
			write(t, store, 30, "g")
			cfg := testConfig(url, n)
			r := startRelay(t, store, cfg, nil)
			total := len(logEvents(t, store))
			natstest.WaitHolds(t, js, n.Stream, total)
			r.stop(t)
			ctx := context.Background()
			s, err := js.Stream(ctx, n.Stream)
			if err != nil {
				t.Fatal(err)
			}
			if err := remove(ctx, s, uint64(total)); err != nil {
				t.Fatal(err)
			}
			write(t, store, 10, "h")
			r = startRelay(t, store, cfg, nil)
			err = r.ended(t, 30*time.Second, func() string {
				return fmt.Sprintf("relay runs into a stream whose last message is gone; it holds %d", natstest.Count(t, js, n.Stream))
			})
			if !errors.Is(err, relaynats.ErrStreamMismatch) || !strings.Contains(err.Error(), "is gone") {
				t.Fatalf("Run = %v, want ErrStreamMismatch saying the last message is gone", err)
			}
		})
	}
}

// A stream that discards new messages once it holds its limit refuses
// every event after it: a relay stalled there, retrying the next event for
// ever ("maximum messages exceeded"). It is refused at the first start,
// naming the setting; with the default discard policy (old) the same
// limit only drops the oldest messages, and the relay relays into it.
func TestRelayRefusesAStreamThatRefusesNewMessages(t *testing.T) {
	url := natstest.MustURL(t)
	cases := map[string]struct {
		cfg  jetstream.StreamConfig
		want string
	}{
		"MaxMsgs":    {jetstream.StreamConfig{MaxMsgs: 5, Discard: jetstream.DiscardNew}, "5 messages"},
		"MaxBytes":   {jetstream.StreamConfig{MaxBytes: 1 << 20, Discard: jetstream.DiscardNew}, "1048576 bytes"},
		"PerSubject": {jetstream.StreamConfig{MaxMsgsPerSubject: 2, Discard: jetstream.DiscardNew, DiscardNewPerSubject: true}, "2 messages per subject"},
		"DiscardOld": {jetstream.StreamConfig{MaxMsgs: 5}, ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r, store := relayIntoStream(t, url, c.cfg, 40, nil)
			if c.want == "" {
				total := len(logEvents(t, store))
				waitFor(t, "the last event relayed", func() bool { return r.relay.Relayed() == int64(total) })
				return
			}
			r.refuses(t, 30*time.Second, c.want, "a stream that refuses new messages")
		})
	}
}

// An event bigger than the stream's MaxMsgSize is refused by JetStream at
// every try: the relay stops, exit 1 naming the event's position and the
// limit, instead of retrying it for ever.
func TestRelayStopsOnAnEventOverTheStreamsMaxMsgSize(t *testing.T) {
	log, buf := bufLogger()
	r, _ := relayIntoStream(t, natstest.MustURL(t), jetstream.StreamConfig{MaxMsgSize: 100}, 5, log)
	err := r.ended(t, 30*time.Second, func() string {
		return fmt.Sprintf("relay retries an event the stream refuses for ever; log:\n%s", buf)
	})
	if err == nil || !strings.Contains(err.Error(), "position 1") || !strings.Contains(err.Error(), "maximum") {
		t.Fatalf("Run = %v, want an error naming position 1 and the size limit", err)
	}
}

// TestCheckIsLogNamesTheLog: the check that a stream holds the log fails
// a stream whose messages name another log (their Ledger-Log).
func TestCheckIsLogNamesTheLog(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	js := natstest.MustJetStream(t, url)
	store := mustStore(t)
	write(t, store, 5, "n")
	startRelay(t, store, testConfig(url, n), nil)
	events := logEvents(t, store)
	natstest.WaitHolds(t, js, n.Stream, len(events))
	natstest.CheckIsLog(t, js, n, store.LogID(), events)
	rec := &failRecorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); natstest.CheckIsLog(rec, js, n, "another-log", events) }()
	<-done
	if !rec.failed.Load() {
		t.Error("a stream of the log passed the check that it holds another log")
	}
}

// failRecorder is a testing.TB that records a failure rather than fail
// the test; its Fatal ends the goroutine, as testing's does.
type failRecorder struct {
	testing.TB
	failed atomic.Bool
}

func (r *failRecorder) Helper()               {}
func (r *failRecorder) Errorf(string, ...any) { r.failed.Store(true) }
func (r *failRecorder) Fatal(...any)          { r.failed.Store(true); runtime.Goexit() }
func (r *failRecorder) Fatalf(string, ...any) { r.failed.Store(true); runtime.Goexit() }
