package bus_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/domain"
)

func startAt(pos int64) func(context.Context) (int64, error) {
	return func(context.Context) (int64, error) { return pos, nil }
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	msg, ok := <-ch
	if !ok {
		t.Fatal("subscription closed")
	}
	return msg
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
	sub, err := bus.NewSubscriber(store, bus.SubscriberConfig{StartAfter: startAt(0), PollInterval: 10e6}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ch, err := sub.Subscribe(context.Background(), bus.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	set(t, domain.NewLedger(other, kinds, domain.LedgerConfig{}, nil), "u1", "article/a", "like", true)
	if msg := receive(t, ch); msg.Metadata.Get(bus.MetaPosition) != "1" {
		t.Fatalf("got position %s", msg.Metadata.Get(bus.MetaPosition))
	}
}
