package main

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/sqlite/sqlitetest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// restoreTables are the tables a restore of a schema's dump puts back
// under running nodes (log_identity too: a restored log keeps its identity).
var restoreTables = []string{"log_head", "streams", "events", "idempotency"}

// TestWriteIntoALogRestoredUnderTheNode: a schema restored from an older
// dump under a running node, then written through that node before its
// once-a-second head check: the write took a position the node had
// already applied (with another event), waited for nothing and answered
// 200 with the old log's counts and a viewer state without the write
// ("active": true beside "viewer": {"like": false}). The node must see it
// at that append, answer 503 naming the restore and the restart, and stop
// its reads.
func TestWriteIntoALogRestoredUnderTheNode(t *testing.T) {
	schema := pgtest.Schema(t)
	db := pgtest.WithSchema(pgtest.URL(t), schema)
	nd := startNodes(t, db, 1)[0]
	for _, u := range []string{"u1", "u2", "u3"} {
		if res, body := httpDo(t, http.MethodPut, nd.base+"/v1/targets/article/a1/like/"+u); res.StatusCode != http.StatusOK {
			t.Fatalf("write: %d %s", res.StatusCode, body)
		}
	}
	backup, restore := "", "BEGIN; TRUNCATE "
	for i, tb := range restoreTables {
		from, to := pgx.Identifier{schema, "bk_" + tb}.Sanitize(), pgx.Identifier{schema, tb}.Sanitize()
		backup += "CREATE TABLE " + from + " AS TABLE " + to + ";"
		if i > 0 {
			restore += ", "
		}
		restore += to
	}
	restore += ";"
	for _, tb := range restoreTables {
		restore += "INSERT INTO " + pgx.Identifier{schema, tb}.Sanitize() + " TABLE " + pgx.Identifier{schema, "bk_" + tb}.Sanitize() + ";"
	}
	pgtest.Exec(t, backup)
	for _, u := range []string{"u4", "u5"} {
		if res, body := httpDo(t, http.MethodPut, nd.base+"/v1/targets/article/a1/like/"+u); res.StatusCode != http.StatusOK {
			t.Fatalf("write: %d %s", res.StatusCode, body)
		}
	}
	pgtest.Exec(t, restore+"COMMIT;")
	// Position 4 again, which the node applied (u4's like); the log has u6's.
	res, body := httpDo(t, http.MethodPut, nd.base+"/v1/targets/article/a2/like/u6")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "restored from an older copy") ||
		!strings.Contains(string(body), "ledger rebuild") {
		t.Fatalf("a write into the restored log: %d %s; want 503 naming the restore and ledger rebuild", res.StatusCode, body)
	}
	if res, body := httpDo(t, http.MethodGet, nd.base+"/v1/targets/article/a1"); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a read once the node appended into the restored log: %d %s, want 503", res.StatusCode, body)
	}
	if res, body := httpDo(t, http.MethodGet, nd.base+"/readyz"); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz once the node appended into the restored log: %d %s, want 503", res.StatusCode, body)
	}
}

// TestDecidedWriteIntoASQLiteLogRestoredUnderTheNode: the SQLite store
// decides a server's write in its own transaction, and appendsWatched's
// Decide must watch the position the write took. A write into a log restored from an older copy, at a
// position the views applied, stops them at that write (no pipeline runs
// here, so nothing else looks).
func TestDecidedWriteIntoASQLiteLogRestoredUnderTheNode(t *testing.T) {
	dir := t.TempDir()
	db, older := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "older.db")
	store := mustOpenStore(t, db, storeOptions{})
	kinds := domain.MustKindSet("like")
	like := func(l *domain.Ledger, user, target string) {
		t.Helper()
		_, err := l.Set(t.Context(), domain.SetRequest{User: storetest.MustUser(t, user),
			Target: storetest.MustTarget(t, target), Kind: kinds.Kinds()[0], On: true})
		if err != nil {
			t.Fatal(err)
		}
	}
	plain := domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil)
	for _, u := range []string{"u1", "u2", "u3"} {
		like(plain, u, "article/a1")
	}
	sqlitetest.Copy(t, db, older)
	for _, u := range []string{"u4", "u5"} {
		like(plain, u, "article/a1")
	}
	set, err := projections.Open(t.Context(), projections.Config{Path: projections.ViewsPath(db), Kinds: kinds}, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	sqlitetest.Copy(t, older, db)
	// Position 4 again, which the views applied (u4's like).
	like(domain.NewLedger(appendsWatched{store, set}, kinds, domain.LedgerConfig{}, nil), "u6", "article/a2")
	if err := set.Err(); !errors.Is(err, projections.ErrLogBehind) || !strings.Contains(err.Error(), "restored from an older copy") {
		t.Fatalf("the views after a write into the restored log: %v, want ErrLogBehind naming the restore", err)
	}
}

// TestETagOfARestoredLog: a log restored from an older copy keeps its
// identity, and a later write can take a position the old log had given
// another event of the same target. A session position from before the
// restore is refused (412 position-beyond-log) until then. A client's ETag from before the
// restore named that position, so it revalidated (304) a representation
// with other counts and another viewer state: the like the user saw
// undone came back from its cache. An ETag must tag the representation's
// content, not only its position.
func TestETagOfARestoredLog(t *testing.T) {
	dir := t.TempDir()
	db, older := filepath.Join(dir, "ledger.db"), filepath.Join(dir, "older.db")
	s := startServe(t, db, nil)
	s.want(t, 200, "PUT", "/v1/targets/article/a1/like/u1", "")
	s.want(t, 200, "PUT", "/v1/targets/article/a1/like/u2", "")
	s.stop(t)
	sqlitetest.Copy(t, db, older)
	s = startServe(t, db, nil)
	s.want(t, 200, "PUT", "/v1/targets/article/a1/like/u3", "") // position 3
	paths := []string{"/v1/targets/article/a1", "/v1/targets/article/a1?viewer=u3"}
	var tags []string
	for _, p := range paths {
		res, _ := s.call(t, "GET", p, "")
		tags = append(tags, res.Header.Get("ETag"))
	}
	s.stop(t)

	sqlitetest.Copy(t, older, db)
	if _, errOut, err := runCLI(t, "rebuild", "--db", db); err != nil {
		t.Fatalf("rebuild: %v\n%s", err, errOut)
	}
	s = startServe(t, db, nil, "--consistency-timeout", "50ms")
	// A session position of before the restore, which the restored log
	// does not hold: refused, not waited for until other events take it.
	s.want(t, 412, "GET", "/v1/targets/article/a1", "", "Ledger-Min-Position", "3")
	deleteUntilApplied(t, s, "/v1/targets/article/a1/like/u2") // position 3 again
	for i, p := range paths {
		res, body := s.call(t, "GET", p, "", "If-None-Match", tags[i])
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s with the ETag %s of before the restore: %d, want 200 with the restored log's counts", p, tags[i], res.StatusCode)
		}
		if !strings.Contains(string(body), `"like":1`) {
			t.Fatalf("GET %s: %s, want the restored log's count of 1", p, body)
		}
		s.want(t, 304, "GET", p, "", "If-None-Match", res.Header.Get("ETag"))
	}
}

// deleteUntilApplied sends a DELETE until it answers 200, its event
// applied: under a 50 ms consistency timeout a loaded machine answers the
// documented 503 not-caught-up (the write durable) now and then, and the
// same Idempotency-Key answers the first outcome once it is applied.
func deleteUntilApplied(t *testing.T, s *served, path string) {
	t.Helper()
	for range 200 {
		res, body := s.call(t, "DELETE", path, "", "Idempotency-Key", "delete-until-applied")
		switch res.StatusCode {
		case http.StatusOK:
			return
		case http.StatusServiceUnavailable:
			continue
		default:
			t.Fatalf("DELETE %s: %d %s", path, res.StatusCode, body)
		}
	}
	t.Fatalf("DELETE %s: not applied after 200 tries", path)
}
