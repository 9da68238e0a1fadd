package postgres_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// logTables are the tables a restore of the log puts back (log_identity
// stays: a restored log keeps its identity).
var logTables = []string{"log_head", "streams", "events", "idempotency"}

// backUp copies the log's tables in schema to bk_<table>.
func backUp(t *testing.T, schema string) {
	t.Helper()
	var sql strings.Builder
	for _, tb := range logTables {
		sql.WriteString("CREATE TABLE " + in(schema, "bk_"+tb) + " AS TABLE " + in(schema, tb) + ";")
	}
	pgtest.Exec(t, sql.String())
}

// restore puts back the tables backUp copied, in one transaction, as a
// restore from a dump into the running schema does.
func restore(t *testing.T, schema string) {
	t.Helper()
	sql := "BEGIN; TRUNCATE " + in(schema, logTables[0])
	for _, tb := range logTables[1:] {
		sql += ", " + in(schema, tb)
	}
	sql += ";"
	for _, tb := range logTables {
		sql += "INSERT INTO " + in(schema, tb) + " TABLE " + in(schema, "bk_"+tb) + ";"
	}
	pgtest.Exec(t, sql+"COMMIT;")
}

func in(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }

// TestNodeStopsOnALogRestoredUnderIt: a schema restored from an older dump
// under a running node (it keeps the log's identity) and grown again past
// the node's position by another node, before the node's WatchHead looked,
// had its new events applied onto the counts of the events it replaced.
// The node must stop its read models (ErrDiverged) and apply none of them.
func TestNodeStopsOnALogRestoredUnderIt(t *testing.T) {
	schema := pgtest.Schema(t)
	a := openSchema(t, schema, postgres.Config{})
	for _, u := range []string{"u1", "u2", "u3"} {
		storetest.MustAppend(t, a, like(t, u, "article/a1"))
	}
	backUp(t, schema)
	for _, u := range []string{"u4", "u5"} {
		storetest.MustAppend(t, a, like(t, u, "article/a1"))
	}
	set, err := projections.Open(t.Context(), projections.Config{Path: filepath.Join(t.TempDir(), "a.views"),
		Kinds: domain.MustKindSet("like"), RebuildBehind: true}, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	r, err := bus.NewRouter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.AddProjections(r, a, set, bus.SubscriberConfig{PollInterval: 20 * time.Millisecond}, nil); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.Run(t.Context()) }()
	defer r.Close()
	<-r.Running()
	restore(t, schema)
	b := openSchema(t, schema, postgres.Config{})
	for _, u := range []string{"u6", "u7", "u8"} {
		storetest.MustAppend(t, b, like(t, u, "article/a2")) // positions 4 to 6
	}
	for deadline := time.Now().Add(10 * time.Second); set.Err() == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := set.Err(); !errors.Is(err, projections.ErrDiverged) || set.Applied() != 5 {
		t.Fatalf("Err once the restored log grew past 5: %v, applied %d; want ErrDiverged at 5", err, set.Applied())
	}
	c, err := set.Target(t.Context(), storetest.MustTarget(t, "article/a2"), nil)
	if err == nil {
		t.Fatalf("article/a2 read %v once the log moved, want an error", c)
	}
}
