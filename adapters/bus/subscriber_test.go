package bus_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
)

func startAt(pos int64) func(context.Context) (int64, error) {
	return func(context.Context) (int64, error) { return pos, nil }
}

func receive(t testing.TB, ch <-chan *message.Message) *message.Message {
	t.Helper()
	msg, ok := <-ch
	if !ok {
		t.Fatal("subscription closed")
	}
	return msg
}

// mustSubscribe subscribes to store's log with cfg; the subscriber closes
// at cleanup.
func mustSubscribe(tb testing.TB, store domain.Tailable, cfg bus.SubscriberConfig) <-chan *message.Message {
	tb.Helper()
	sub, err := bus.NewSubscriber(store, cfg, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { sub.Close() })
	ch, err := sub.Subscribe(context.Background(), bus.DefaultTopic)
	if err != nil {
		tb.Fatal(err)
	}
	return ch
}

func TestSubscriber(t *testing.T) {
	store := MustStore(t, "")
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	for i := range 7 {
		set(t, l, "u"+strconv.Itoa(i), "article/a", "like", true)
	}
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		sub, err := bus.NewSubscriber(store, bus.SubscriberConfig{StartAfter: startAt(2), BatchSize: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ch, err := sub.Subscribe(ctx, bus.DefaultTopic)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for range 5 {
			msg := receive(t, ch)
			select {
			case <-ch:
				t.Fatal("a second message was in flight before the ack")
			default:
			}
			e, err := bus.DecodeMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			if msg.UUID != e.ID.String() {
				t.Fatalf("uuid %s, event %s", msg.UUID, e.ID)
			}
			got = append(got, fmt.Sprintf("%s:%s", msg.Metadata.Get(bus.MetaPosition), msg.Metadata.Get(bus.MetaBatchLast)))
			msg.Ack()
		}
		if want := "[3:false 4:false 5:true 6:false 7:true]"; fmt.Sprint(got) != want {
			t.Fatalf("got %v, want %v", got, want)
		}
		// The next commit wakes the tail.
		set(t, l, "u9", "article/a", "like", true)
		if msg := receive(t, ch); msg.Metadata.Get(bus.MetaPosition) != "8" {
			t.Fatalf("got position %s", msg.Metadata.Get(bus.MetaPosition))
		}
	})

	t.Run("NackStops", func(t *testing.T) {
		sub, err := bus.NewSubscriber(store, bus.SubscriberConfig{StartAfter: startAt(0)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ch, err := sub.Subscribe(ctx, bus.DefaultTopic)
		if err != nil {
			t.Fatal(err)
		}
		receive(t, ch).Ack()
		receive(t, ch).Nack()
		if _, ok := <-ch; ok {
			t.Fatal("subscription went on after a Nack")
		}
		// A new subscription starts again from StartAfter: nothing skipped.
		ch, err = sub.Subscribe(ctx, bus.DefaultTopic)
		if err != nil {
			t.Fatal(err)
		}
		if msg := receive(t, ch); msg.Metadata.Get(bus.MetaPosition) != "1" {
			t.Fatalf("got position %s", msg.Metadata.Get(bus.MetaPosition))
		}
	})

	t.Run("Close", func(t *testing.T) {
		sub, err := bus.NewSubscriber(store, bus.SubscriberConfig{StartAfter: startAt(100)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := sub.Subscribe(ctx, bus.DefaultTopic)
		if err != nil {
			t.Fatal(err)
		}
		sub.Close()
		if _, ok := <-ch; ok {
			t.Fatal("message after Close")
		}
		if _, err := sub.Subscribe(ctx, bus.DefaultTopic); err == nil {
			t.Fatal("Subscribe after Close succeeded")
		}
	})
}

// TestSubscriberPollsOtherWriters: an append by another process (here a
// second store on the same file) does not signal Committed; the poll finds
// it.
func TestSubscriberPollsOtherWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	store := MustStore(t, path)
	other := MustStore(t, path)
	ch := mustSubscribe(t, store, bus.SubscriberConfig{StartAfter: startAt(0), PollInterval: 10e6})
	set(t, domain.NewLedger(other, kinds, domain.LedgerConfig{}, nil), "u1", "article/a", "like", true)
	if msg := receive(t, ch); msg.Metadata.Get(bus.MetaPosition) != "1" {
		t.Fatalf("got position %s", msg.Metadata.Get(bus.MetaPosition))
	}
}

// countingStore counts the reads of the log that reach the store.
type countingStore struct {
	*sqlite.EventStore
	reads atomic.Int64
}

func (c *countingStore) ReadEvents(ctx context.Context, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	c.reads.Add(1)
	return c.EventStore.ReadEvents(ctx, f)
}

// TestSubscriberReadsOwnCommitsFromMemory checks that a tail following its
// own store's commits takes them from the store's memory
// (domain.RecentReader) and queries the log only at its start.
func TestSubscriberReadsOwnCommitsFromMemory(t *testing.T) {
	store := &countingStore{EventStore: MustStore(t, "")}
	// As the tail's first read would: from here on the store keeps its
	// commits, so none made before that read is missing from its memory.
	store.AppendRecent(nil, 0, 1)
	ch := mustSubscribe(t, store, bus.SubscriberConfig{StartAfter: startAt(0), PollInterval: time.Hour})
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	for i := range 20 {
		set(t, l, "u"+strconv.Itoa(i), "article/a", "like", true)
		msg := receive(t, ch)
		if got, want := msg.Metadata.Get(bus.MetaPosition), strconv.Itoa(i+1); got != want {
			t.Fatalf("position %s, want %s", got, want)
		}
		msg.Ack()
	}
	if n := store.reads.Load(); n > 1 {
		t.Fatalf("%d reads of the log for 20 own commits, want at most 1 (the start)", n)
	}
}

// TestSubscriberInterleavedWriters checks that commits of two stores on one
// file, interleaved, all reach a subscriber of one of them, in order.
func TestSubscriberInterleavedWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	store, other := MustStore(t, path), MustStore(t, path)
	ch := mustSubscribe(t, store, bus.SubscriberConfig{StartAfter: startAt(0), PollInterval: 5 * time.Millisecond})
	mine := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	theirs := domain.NewLedger(other, kinds, domain.LedgerConfig{}, nil)
	const n = 29 // the last two: one of its own store's, then one of the other's
	for i := range n - 1 {
		l := mine
		if i%3 == 1 {
			l = theirs
		}
		set(t, l, "u"+strconv.Itoa(i), "article/a", "like", true)
	}
	for i := range n {
		if i == n-1 { // caught up with its own store: only a poll finds this one
			set(t, theirs, "u"+strconv.Itoa(i), "article/a", "like", true)
		}
		var msg *message.Message
		select {
		case msg = <-ch:
		case <-time.After(5 * time.Second):
			t.Fatalf("message %d: none in 5 s", i)
		}
		if got, want := msg.Metadata.Get(bus.MetaPosition), strconv.Itoa(i+1); got != want {
			t.Fatalf("message %d at position %s, want %s", i, got, want)
		}
		msg.Ack()
	}
}

// TestNewSubscriberWithoutStore: no store is an error at once, not a panic
// in the subscription's goroutine later.
func TestNewSubscriberWithoutStore(t *testing.T) {
	if _, err := bus.NewSubscriber(nil, bus.SubscriberConfig{}, nil); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("NewSubscriber(nil): %v, want ErrInvalidInput", err)
	}
}
