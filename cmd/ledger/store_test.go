package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
)

// mustOpenStore opens the commands' store at db; it is closed when the
// test ends.
func mustOpenStore(t *testing.T, db string, opts storeOptions) *logStore {
	t.Helper()
	store, err := openStore(context.Background(), db, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// TestOpenStoreReadsLatest checks that the commands' store keeps the
// store's domain.LatestReader: a rebuild through it reads each
// interaction's last event, not the whole log (embedding the port alone
// hid it).
func TestOpenStoreReadsLatest(t *testing.T) {
	db := filepath.Join(t.TempDir(), "ledger.db")
	mustFill(t, db, 3) // each of 3 users likes, then unlikes, article/a1
	store := mustOpenStore(t, db, storeOptions{readOnly: true})
	var port domain.EventReader = store
	lr, ok := port.(domain.LatestReader)
	if !ok {
		t.Fatal("the commands' store is not a domain.LatestReader")
	}
	toggles, err := domain.AppendEvents(nil, lr.ReadLatest(context.Background(), 6))
	if err != nil {
		t.Fatal(err)
	}
	if len(toggles) != 3 {
		t.Fatalf("got %d latest toggles, want 3 (one per user)", len(toggles))
	}
	for _, tg := range toggles {
		if tg.On {
			t.Errorf("toggle %d is a turn-on; each user's last event is the unlike", tg.Position)
		}
	}
}

// TestOpenStoreReadsRecent checks that the commands' store keeps the
// SQLite store's domain.RecentReader: a server's projections then take its
// own commits from memory instead of querying the log for each.
func TestOpenStoreReadsRecent(t *testing.T) {
	store := mustOpenStore(t, filepath.Join(t.TempDir(), "ledger.db"), storeOptions{})
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

// countingStore counts the Decide and Snapshot calls a SQLite store gets.
type countingStore struct {
	*sqlite.EventStore
	decides, snapshots atomic.Int64
}

func (c *countingStore) Decide(ctx context.Context, req domain.DecideRequest) (domain.Outcome, error) {
	c.decides.Add(1)
	return c.EventStore.Decide(ctx, req)
}

func (c *countingStore) Snapshot(ctx context.Context, st domain.StreamID) (domain.Snapshot, error) {
	c.snapshots.Add(1)
	return c.EventStore.Snapshot(ctx, st)
}

// TestOpenStoreDecides checks that the commands' store keeps the SQLite
// store's Decide: a write is decided in the writer's transaction, with no
// Snapshot read before it (embedding the port alone hid it).
func TestOpenStoreDecides(t *testing.T) {
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "ledger.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	counted := &countingStore{EventStore: store}
	kinds := domain.MustKindSet("like")
	l := domain.NewLedger(&logStore{EventStore: counted}, kinds, domain.LedgerConfig{}, nil)
	for _, on := range []bool{true, true, false} {
		_, err := l.Set(t.Context(), domain.SetRequest{User: storetest.MustUser(t, "u1"),
			Target: storetest.MustTarget(t, "article/a1"), Kind: kinds.Kinds()[0], On: on})
		if err != nil {
			t.Fatal(err)
		}
	}
	if d, s := counted.decides.Load(), counted.snapshots.Load(); d != 3 || s != 0 {
		t.Fatalf("%d decides and %d snapshot reads for 3 writes, want 3 and none", d, s)
	}
}

// redactDB hides a PostgreSQL URL's secrets, in its user part and in the
// parameters libpq reads them from (the relay logged ?password= in clear).
func TestRedactDB(t *testing.T) {
	for _, db := range []string{
		"postgres://alice:SeCrEt@db:5432/ledger",
		"postgres://alice@db/ledger?sslmode=disable&password=SeCrEt",
		"postgresql://db/ledger?sslpassword=SeCrEt&application_name=x",
	} {
		got := dburl.Redact(db)
		if strings.Contains(got, "SeCrEt") || !strings.Contains(got, "xxxxx") {
			t.Errorf("dburl.Redact(%q) = %q", db, got)
		}
	}
	if got := dburl.Redact("./data/ledger.db"); got != "./data/ledger.db" {
		t.Errorf("a file path redacted: %q", got)
	}
}

// TestDBCheckedOnce: serve checked its --db (checkDB) before it listened
// and again when it opened the log, import log its DEST and SOURCE again
// when it opened them; each is now checked once, with the same refusals.
func TestDBCheckedOnce(t *testing.T) {
	counted := map[string]int{}
	checkDB = func(db string) error { counted[db]++; return checkStore(db) }
	t.Cleanup(func() { checkDB = checkStore })
	dir := t.TempDir()
	db := filepath.Join(dir, "ledger.db")
	mustFill(t, db, 2)
	clear(counted)
	s := startServe(t, db, nil, "--views", filepath.Join(dir, "v"))
	s.stop(t)
	if counted[db] != 1 {
		t.Errorf("serve checked its --db %d times, want once", counted[db])
	}
	clear(counted)
	dest := filepath.Join(dir, "dest.db")
	mustImportLog(t, db, dest)
	if counted[db] > 1 || counted[dest] != 1 {
		t.Errorf("import log checked SOURCE %d and DEST %d times, want each at most once", counted[db], counted[dest])
	}
}
