package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/interactionledger/ledger/adapters/bus"
	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/adapters/nats/natstest"
	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
)

// TestWatermillConsumer is the README's consumer example: a watermill-nats
// JetStream subscriber with the relay's Marshaler, on one kind's subjects,
// gets that kind's events in log order and decodes them.
func TestWatermillConsumer(t *testing.T) {
	url := natstest.MustURL(t)
	n := natstest.UniqueNames(t, url)
	store := mustStore(t)
	write(t, store, 120, "w")
	startRelay(t, store, testConfig(url, n), nil)
	natstest.WaitHolds(t, natstest.MustJetStream(t, url), n.Stream, len(logEvents(t, store)))
	var want []domain.Event
	for _, e := range logEvents(t, store) {
		if e.Kind.String() == "like" {
			want = append(want, e)
		}
	}

	sub, err := wmnats.NewSubscriber(wmnats.SubscriberConfig{
		URL:            url,
		Unmarshaler:    relaynats.Marshaler{},
		AckWaitTimeout: 30 * time.Second,
		JetStream: wmnats.JetStreamConfig{
			DurablePrefix:    "notifier",
			SubscribeOptions: []natsgo.SubOpt{natsgo.BindStream(n.Stream), natsgo.DeliverAll(), natsgo.AckExplicit()},
		},
	}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, n.Prefix+".like.>")
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		msg := <-msgs
		if msg == nil {
			t.Fatalf("subscription ended after %d of %d events", i, len(want))
		}
		e, err := bus.DecodeMessage(msg)
		if err != nil {
			t.Fatal(err)
		}
		msg.Ack()
		if e.ID != w.ID || e.Position != w.Position || e.Kind != w.Kind || e.Target != w.Target || e.User != w.User {
			t.Fatalf("event %d: got %+v, want %+v", i, e, w)
		}
	}
}
