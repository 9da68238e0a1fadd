package natstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Addr is the NATS server (with JetStream) the tests use.
const Addr = "127.0.0.1:4222"

// HeaderPosition mirrors the relay's Ledger-Position header.
const HeaderPosition = "Ledger-Position"

// HeaderLog mirrors the relay's Ledger-Log header.
const HeaderLog = "Ledger-Log"

// MustURL returns the server's URL. An unreachable server fails the test
// with CI=true and skips it, loudly, otherwise.
func MustURL(tb testing.TB) string {
	tb.Helper()
	c, err := net.DialTimeout("tcp", Addr, 2*time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatalf("NATS JetStream at %s is unreachable and CI=true: %v (start nats-server -js)", Addr, err)
		}
		tb.Skipf("SKIPPING: NATS JetStream at %s is unreachable (%v); start nats-server -js to run the relay tests", Addr, err)
	}
	c.Close()
	return "nats://" + Addr
}

// Names are a test's own stream, subject prefix and lock bucket.
type Names struct{ Stream, Prefix, Bucket string }

// UniqueNames derives names from the test's name and a random suffix and
// deletes the stream and the bucket when the test ends.
func UniqueNames(tb testing.TB, url string) Names {
	tb.Helper()
	var b strings.Builder
	for _, r := range tb.Name() {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	base := b.String()
	if len(base) > 30 {
		base = base[len(base)-30:]
	}
	rnd := make([]byte, 4)
	rand.Read(rnd)
	base += "_" + hex.EncodeToString(rnd)
	n := Names{Stream: "T_" + base, Prefix: "t." + strings.ToLower(base) + ".ev", Bucket: "L_" + base}
	tb.Cleanup(func() {
		js := MustJetStream(tb, url)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, n.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			tb.Errorf("delete stream %s: %v", n.Stream, err)
		}
		if err := js.DeleteKeyValue(ctx, n.Bucket); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			tb.Errorf("delete bucket %s: %v", n.Bucket, err)
		}
	})
	return n
}

// MustJetStream connects to url for the test's own checks; the connection
// closes when the test ends.
func MustJetStream(tb testing.TB, url string) jetstream.JetStream {
	tb.Helper()
	nc, err := natsgo.Connect(url)
	if err != nil {
		tb.Fatalf("connect %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// Count returns how many messages the stream holds (0 when absent).
func Count(tb testing.TB, js jetstream.JetStream, stream string) uint64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return info.State.Msgs
}

// WaitHolds waits until the stream holds at least n messages; the limit
// only guards against a hang.
func WaitHolds(tb testing.TB, js jetstream.JetStream, stream string, n int) {
	tb.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for Count(tb, js, stream) < uint64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting (90s) for stream %s to hold %d messages; it holds %d", stream, n, Count(tb, js, stream))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Messages returns every message of the stream in sequence order.
func Messages(tb testing.TB, js jetstream.JetStream, stream string) []*jetstream.RawStreamMsg {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]*jetstream.RawStreamMsg, 0, info.State.LastSeq)
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			tb.Fatalf("message %d: %v", seq, err)
		}
		out = append(out, m)
	}
	return out
}

// CheckIsLog checks that the stream holds exactly events, the log named
// logID: one message per event, in position order, with its subject, its
// headers (Ledger-Log naming logID among them) and its payload (the bytes
// /v1/events serves, from the one encoder).
func CheckIsLog(tb testing.TB, js jetstream.JetStream, n Names, logID string, events []domain.Event) {
	tb.Helper()
	msgs := Messages(tb, js, n.Stream)
	if len(msgs) != len(events) {
		tb.Errorf("stream holds %d messages, the log %d events", len(msgs), len(events))
	}
	for i := range min(len(msgs), len(events)) {
		if err := checkMessage(msgs[i], events[i], uint64(i+1), n.Prefix, logID); err != nil {
			tb.Fatal(err)
		}
	}
}

func checkMessage(m *jetstream.RawStreamMsg, e domain.Event, seq uint64, prefix, logID string) error {
	if m.Sequence != seq {
		return fmt.Errorf("message %d has sequence %d", seq, m.Sequence)
	}
	if want := prefix + "." + e.Kind.String() + "." + e.Target.Type(); m.Subject != want {
		return fmt.Errorf("message %d: subject %q, want %q", seq, m.Subject, want)
	}
	if got := m.Header.Get(natsgo.MsgIdHdr); got != e.ID.String() {
		return fmt.Errorf("message %d: Nats-Msg-Id %q, want event id %s (position %d)", seq, got, e.ID, e.Position)
	}
	if got := m.Header.Get(HeaderPosition); got != strconv.FormatInt(e.Position, 10) {
		return fmt.Errorf("message %d: Ledger-Position %q, want %d", seq, got, e.Position)
	}
	if got := m.Header.Get(HeaderLog); got != logID {
		return fmt.Errorf("message %d: Ledger-Log %q, want the log %q", seq, got, logID)
	}
	if !bytes.Equal(m.Data, eventcodec.MarshalEvent(e)) {
		return fmt.Errorf("message %d: payload\n%s\nwant\n%s", seq, m.Data, eventcodec.MarshalEvent(e))
	}
	return nil
}
