package postgres

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
)

// TestMigrateTargetIndex: a schema an older build left at version 2, with
// streams_target on (target_type, target_id), is migrated by Open to
// streams_target on (target_type, target_id, user_id), its streams as
// they were, found by identity and by target.
func TestMigrateTargetIndex(t *testing.T) {
	url := pgtest.URL(t)
	schema, conn := versionTwo(t, url)
	target := func() string {
		t.Helper()
		var def string
		if err := conn.QueryRow(t.Context(), `SELECT pg_get_indexdef('streams_target'::regclass)`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	if def := target(); def != "CREATE INDEX streams_target ON "+schema+".streams USING btree (target_type, target_id)" {
		t.Fatalf("version 2's streams_target: %s", def)
	}
	pgtest.Exec(t, `INSERT INTO `+pgx.Identifier{schema, "streams"}.Sanitize()+` (stream_key, user_id, target_type, target_id, version, last_position, state)
SELECT g, 'u' || g, 'article', 'hot', 1, g, 'like' FROM generate_series(1, 50) g;
INSERT INTO `+pgx.Identifier{schema, "events"}.Sanitize()+` (position, id, stream_key, stream_version, type, kind, occurred_at, recorded_at)
SELECT g, gen_random_uuid(), g, 1, 'interaction.added', 'like', g, g FROM generate_series(1, 50) g;
UPDATE `+pgx.Identifier{schema, "log_head"}.Sanitize()+` SET position = 50, stream_key = 50`)
	s, err := Open(t.Context(), Config{URL: url, Schema: schema}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if def := target(); def != "CREATE INDEX streams_target ON "+schema+".streams USING btree (target_type, target_id, user_id)" {
		t.Fatalf("migrated streams_target: %s", def)
	}
	user, _ := domain.NewUserID("u7")
	hot, _ := domain.NewTarget("article", "hot")
	snap, err := s.Snapshot(t.Context(), domain.StreamID{User: user, Target: hot})
	if err != nil || snap.Version != 1 || snap.LastPosition != 7 {
		t.Fatalf("u7's snapshot %+v, %v; want version 1 at 7", snap, err)
	}
	n := 0
	for e, err := range s.ReadEvents(t.Context(), domain.EventFilter{TargetType: "article", TargetID: "hot"}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; e.Position != int64(n) {
			t.Fatalf("event %d at position %d", n, e.Position)
		}
	}
	if n != 50 {
		t.Fatalf("%d events of article/hot, want 50", n)
	}
}

// TestMigrateTargetIndexBesideAWriter: migration 0003 run while an older
// node's group commit holds the head row and has read streams waits for
// that commit, which writes its stream and commits, and then migrates.
// Without the head row locked first, the commit waited for the index
// build's lock on streams and the drop for the commit's read: a deadlock,
// which failed one of them.
func TestMigrateTargetIndexBesideAWriter(t *testing.T) {
	url := pgtest.URL(t)
	schema, conn := versionTwo(t, url)
	tx := holdHead(t, conn)
	if _, err := tx.Exec(t.Context(), sqlSnapshot, "u1", "article", "a"); err != nil {
		t.Fatal(err)
	}
	// Named, to be told apart from the older node's session.
	opened := openInBackground(t, pgtest.WithSchema(url, schema)+"&application_name="+schema, nil)
	waitForLockWait(t, schema)
	_, err := tx.Exec(t.Context(), `INSERT INTO streams (stream_key, user_id, target_type, target_id, version, last_position, state)
VALUES (1, 'u1', 'article', 'a', 1, 0, 'like')`)
	if err == nil {
		err = tx.Commit(t.Context())
	}
	if err != nil {
		t.Errorf("the older node's commit beside the migration: %v", err)
	}
	if err := <-opened; err != nil {
		t.Errorf("the migration beside the older node's commit: %v", err)
	}
}

// TestMigrateLogMovedBesideAWriter: migration 0004 (log_moved) run while
// an older node's group commit holds the head row and has written its
// event and stream does not wait for it (it adds a table and a function,
// and locks nothing an older writer uses), and the commit then commits.
func TestMigrateLogMovedBesideAWriter(t *testing.T) {
	url := pgtest.URL(t)
	schema, conn := versionAt(t, url, 3)
	tx := holdHead(t, conn)
	_, err := tx.Exec(t.Context(), `INSERT INTO streams VALUES (1, 'u1', 'article', 'a', 1, 1, 'like');
INSERT INTO events VALUES (1, gen_random_uuid(), 1, 1, 'interaction.added', 'like', 1, 1, NULL);
UPDATE log_head SET position = 1, stream_key = 1`)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, Config{URL: url, Schema: schema}, nil)
	if err != nil {
		t.Fatalf("the migration beside the older node's commit: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatalf("the older node's commit beside the migration: %v", err)
	}
	if n, err := s.LastPosition(t.Context()); err != nil || n != 1 {
		t.Fatalf("head %d, %v; want the older node's event at 1", n, err)
	}
}

// A statement_timeout in the URL, set for the ledger's requests, does not
// bound a migration: migration 0003's build, or its wait for the head row
// behind an older node's group commit, outlasted it, and the node failed
// to start ("canceling statement due to statement timeout"), at every try.
func TestMigrationOutlastsTheURLsStatementTimeout(t *testing.T) {
	url := pgtest.URL(t)
	schema, conn := versionTwo(t, url)
	tx := holdHead(t, conn)
	opened := openInBackground(t, pgtest.WithSchema(url, schema)+"&statement_timeout=50&application_name="+schema, nil)
	waitForLockWait(t, schema)
	// Past the URL's timeout, so that the migration's wait would have
	// been cancelled had it applied.
	time.Sleep(500 * time.Millisecond)
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Errorf("the migration under statement_timeout=50: %v", err)
	}
}

// A process that finds another migrating the schema says that it waits
// for it before it does: migration 0003 holds the lock for as long as its
// build (3.6 s per million streams, longer behind a read of the whole
// log), and the waiting node logged nothing until its own "applied" or
// "serving".
func TestMigrationWaitSaid(t *testing.T) {
	url := pgtest.URL(t)
	schema := pgtest.Schema(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, lockKey(schema)); err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	opened := openInBackground(t, pgtest.WithSchema(url, schema)+"&application_name="+schema, slog.New(slog.NewTextHandler(logs, nil)))
	waitForLockWait(t, schema)
	said := logs.String()
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, lockKey(schema)); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	if want := `msg="waiting for another process to migrate the event log's schema" schema=` + schema; !strings.Contains(said, want) {
		t.Errorf("logged while waiting:\n%s\nwant a line with %s", said, want)
	}
}

// A migration that runs out of the URL's lock_timeout names that lock
// wait, not the head lock: behind a read of the log, migration 0003's
// swap of the indexes timed out and the node's start failed with "timed
// out waiting for the log's head lock (another writer is stuck)", which
// sent the operator after a stuck writer.
func TestMigrationLockTimeoutNamed(t *testing.T) {
	url := pgtest.URL(t)
	schema, conn := versionTwo(t, url)
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(t.Context()) }()
	if _, err := tx.Exec(t.Context(), `SELECT count(*) FROM streams`); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), Config{URL: pgtest.WithSchema(url, schema) + "&lock_timeout=50"}, nil)
	if err == nil {
		_ = s.Close()
		t.Fatal("migrated while a read held the streams table")
	}
	if msg := err.Error(); strings.Contains(msg, "head lock") || !strings.Contains(msg, "lock_timeout") {
		t.Errorf("the migration's lock timeout: %v; want it named, not the head lock", err)
	}
}

// holdHead begins a transaction on conn holding the log's head row, as
// an appending node's group commit does; it is rolled back at the end
// unless committed.
func holdHead(t *testing.T, conn *pgx.Conn) pgx.Tx {
	t.Helper()
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.WithoutCancel(t.Context())) })
	if _, err := tx.Exec(t.Context(), `SELECT position FROM log_head FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	return tx
}

// openInBackground opens (so migrates) a store at url and closes it, in a
// goroutine, and sends the result on the channel it returns. A nil log
// discards.
func openInBackground(t *testing.T, url string, log *slog.Logger) <-chan error {
	opened := make(chan error, 1)
	go func() {
		s, err := Open(t.Context(), Config{URL: url}, log)
		if err == nil {
			err = s.Close()
		}
		opened <- err
	}()
	return opened
}

// versionTwo returns a new schema migrated to version 2 alone, as an
// older build left it, and a connection to it.
func versionTwo(t *testing.T, url string) (string, *pgx.Conn) {
	t.Helper()
	return versionAt(t, url, 2)
}

// versionAt returns a new schema migrated to version n alone, as an older
// build left it, and a connection to it.
func versionAt(t *testing.T, url string, n int) (string, *pgx.Conn) {
	t.Helper()
	schema := pgtest.Schema(t)
	conn, err := pgx.Connect(t.Context(), pgtest.WithSchema(url, schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.WithoutCancel(t.Context())) })
	all, err := embedded()
	if err != nil {
		t.Fatal(err)
	}
	if err := applyMigrations(t.Context(), conn, schema, all[:n], slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return schema, conn
}

// waitForLockWait waits until a session of application waits for a lock.
func waitForLockWait(t *testing.T, application string) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for range 1000 {
		var waiting bool
		err := conn.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
WHERE wait_event_type = 'Lock' AND application_name = $1)`, application).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no session of %s waits for a lock", application)
}
