package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
)

// TestOpenStoreReadsLatest checks that the commands' store keeps the
// store's domain.LatestReader: a rebuild through it reads each
// interaction's last event, not the whole log (embedding the port alone
// hid it).
func TestOpenStoreReadsLatest(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ledger.db")
	mustFill(t, db, 3) // each of 3 users likes, then unlikes, article/a1
	store, err := openStore(context.Background(), db, storeOptions{readOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var port domain.EventReader = store
	lr, ok := port.(domain.LatestReader)
	if !ok {
		t.Fatal("the commands' store is not a domain.LatestReader")
	}
	events, err := domain.AppendEvents(nil, lr.ReadLatest(context.Background(), 6))
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("got %d latest events, want 3 (one per user)", len(events))
	}
	for _, e := range events {
		if e.On() {
			t.Errorf("event %d is a turn-on; each user's last event is the unlike", e.Position)
		}
	}
}

// TestOpenStoreReadsRecent checks that the commands' store keeps the
// SQLite store's domain.RecentReader: a server's projections then take its
// own commits from memory instead of querying the log for each.
func TestOpenStoreReadsRecent(t *testing.T) {
	store, err := openStore(t.Context(), filepath.Join(t.TempDir(), "ledger.db"), storeOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var port domain.Tailable = store
	rr, ok := port.(domain.RecentReader)
	if !ok {
		t.Fatal("the commands' store is not a domain.RecentReader")
	}
	rr.AppendRecent(nil, 0, 10) // a follower asks: from now on it keeps them
	kinds := domain.MustKindSet("like")
	l := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	out, err := l.Set(t.Context(), domain.SetRequest{User: storetest.MustUser(t, "u1"),
		Target: storetest.MustTarget(t, "article/a1"), Kind: kinds.Kinds()[0], On: true})
	if err != nil {
		t.Fatal(err)
	}
	events, held := rr.AppendRecent(nil, 0, 10)
	if !held || len(events) != 1 || events[0].Position != out.Position {
		t.Fatalf("recent after 0: %+v, %v; want the event at %d", events, held, out.Position)
	}
}
