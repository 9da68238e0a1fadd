package bus

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// A message of AddProjections' subscription carries a whole read batch in
// its context, and no payload; ProjectionHandler applies it at once.
func TestBatchMessage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "ledger.db"), Synchronous: "NORMAL"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	kinds := domain.MustKindSet("like")
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	target, err := domain.ParseTarget("article/a")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		user, err := domain.NewUserID("u" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Set(ctx, domain.SetRequest{User: user, Target: target, Kind: mustLike(t), On: true}); err != nil {
			t.Fatal(err)
		}
	}
	events, err := domain.AppendEvents(nil, store.ReadEvents(ctx, domain.EventFilter{}))
	if err != nil || len(events) != 3 {
		t.Fatalf("read %d events: %v", len(events), err)
	}
	set, err := projections.Open(ctx, projections.Config{Path: filepath.Join(dir, "views"), Kinds: kinds}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()

	msg := batchMessage(ctx, events)
	if len(msg.Payload) != 0 || msg.UUID != events[2].ID.String() || msg.Metadata.Get(MetaPosition) != "3" || !endsBatch(msg) {
		t.Fatalf("batch message: payload %d bytes, UUID %s, position %q", len(msg.Payload), msg.UUID, msg.Metadata.Get(MetaPosition))
	}
	if err := ProjectionHandler(set, set.Names()...)(msg); err != nil {
		t.Fatal(err)
	}
	v, err := set.Target(ctx, target, nil)
	if err != nil || v.Counts["like"] != 3 || set.Applied() != 3 {
		t.Fatalf("after one batch message: %+v, applied %d, %v; want 3 likes at 3", v, set.Applied(), err)
	}
}

func mustLike(t *testing.T) domain.Kind {
	t.Helper()
	k, err := domain.ParseKind("like")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
