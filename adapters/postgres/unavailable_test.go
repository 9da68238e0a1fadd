package postgres_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
)

// TestUnavailableThenHeals locks the store's role out of the database and
// terminates its sessions: appends and reads fail with
// domain.ErrUnavailable naming the cause; once the role may connect again
// the same store appends, and its listener is back (another store's commit
// wakes it).
func TestUnavailableThenHeals(t *testing.T) {
	schema := pgtest.Schema(t)
	url, role := pgtest.Role(t, schema)
	s, err := postgres.Open(t.Context(), postgres.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(t.Context(), like(t, "before", "article/a1")); err != nil {
		t.Fatal(err)
	}

	pgtest.LockOut(t, role)
	_, err = s.Append(t.Context(), like(t, "during", "article/a1"))
	checkUnavailable(t, "append", err)
	_, err = s.LastPosition(t.Context())
	checkUnavailable(t, "last position", err)

	pgtest.LetIn(t, role)
	var res domain.AppendResult
	waitFor(t, "an append to succeed again", func() bool {
		res, err = s.Append(t.Context(), like(t, "after", "article/a1"))
		if err != nil && !errors.Is(err, domain.ErrUnavailable) {
			t.Fatalf("append after the database came back: %v", err)
		}
		return err == nil
	})
	if res.LastPosition != 2 {
		t.Fatalf("append after healing at %d, want 2 (the refused one must not be stored)", res.LastPosition)
	}
	other := openSchema(t, schema, postgres.Config{})
	woken := s.Committed()
	if _, err := other.Append(t.Context(), like(t, "other", "article/a1")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(2 * postgres.DefaultPollInterval):
		t.Fatal("the healed store's listener missed another store's commit")
	}
}

// TestTerminatedBackendsHeal terminates the store's sessions without
// locking it out: only calls that meet a dead connection fail, each with
// domain.ErrUnavailable (at most one per pooled connection), and the store
// goes on appending on new connections, with no gap.
func TestTerminatedBackendsHeal(t *testing.T) {
	schema := pgtest.Schema(t)
	url, role := pgtest.Role(t, schema)
	s, err := postgres.Open(t.Context(), postgres.Config{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(t.Context(), like(t, "before", "article/a1")); err != nil {
		t.Fatal(err)
	}
	pgtest.Terminate(t, role)
	var failures, successes, streak int
	for i := 0; streak < 3; i++ {
		_, err := s.Append(t.Context(), like(t, fmt.Sprintf("after%d", i), "article/a1"))
		if err != nil {
			checkUnavailable(t, "append after pg_terminate_backend", err)
			failures, streak = failures+1, 0
		} else {
			successes, streak = successes+1, streak+1
		}
		if failures > postgres.DefaultMaxConns {
			t.Fatalf("%d appends failed after the sessions were terminated: the store does not heal", failures)
		}
	}
	if last, err := s.LastPosition(t.Context()); err != nil || last != int64(1+successes) {
		t.Fatalf("last position %d, %v; want %d", last, err, 1+successes)
	}
}

// checkUnavailable checks err is domain.ErrUnavailable with a reason.
func checkUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, domain.ErrUnavailable) {
		t.Fatalf("%s: %v, want domain.ErrUnavailable", what, err)
	}
	var r interface{ Reason() string }
	if !errors.As(err, &r) || r.Reason() == "" {
		t.Fatalf("%s: %v carries no reason for clients", what, err)
	}
}

// TestDatabaseRefusingConnections: a database that refuses new connections
// (ALLOW_CONNECTIONS false: SQLSTATE 55000 at login, a code of no fault
// class) makes the store unavailable, not an internal error; it was a 500
// on every node.
func TestDatabaseRefusingConnections(t *testing.T) {
	base := pgtest.URL(t)
	db := fmt.Sprintf("refusing_%d", time.Now().UnixNano())
	pgtest.Exec(t, "CREATE DATABASE "+db)
	t.Cleanup(func() { pgtest.Exec(t, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	s, err := postgres.Open(t.Context(), postgres.Config{URL: u.String()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pgtest.Exec(t, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false")
	pgtest.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db)
	// The first tries may meet a pooled connection the termination ended;
	// then new connections are refused.
	for try := 0; ; try++ {
		_, err = s.Append(t.Context(), like(t, "during", "article/a1"))
		checkUnavailable(t, "append", err)
		if strings.Contains(err.Error(), "not currently accepting connections") {
			break
		}
		if try == 10 {
			t.Fatalf("append: %v; never the refused connection", err)
		}
	}
	pgtest.Exec(t, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true")
}

// TestListenerOutageLoggedOnce: while the database refuses the listener,
// its reconnection attempts (every 5 s at most, for as long as the outage
// lasts) are logged as one run, the first failure and then at most one
// line every failurelog.Every, and its reconnection once; each attempt
// was a warning of its own, 12 a minute for the whole outage.
func TestListenerOutageLoggedOnce(t *testing.T) {
	schema := pgtest.Schema(t)
	url, role := pgtest.Role(t, schema)
	var logs testlog.Buffer
	s, err := postgres.Open(t.Context(), postgres.Config{URL: url}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	<-s.Listening()
	pgtest.LockOut(t, role)
	// Each failed attempt wakes the store's waiters (notifications may
	// have been missed): six wakes are five attempts after the loss.
	for range 6 {
		<-s.Committed()
	}
	if n := strings.Count(logs.String(), "commit listener"); n != 1 {
		t.Fatalf("%d lines about the commit listener after its first five failed reconnections, want 1:\n%s", n, logs.String())
	}
	pgtest.LetIn(t, role)
	waitFor(t, "the listener's reconnection to be logged", func() bool {
		return strings.Contains(logs.String(), "commit listener works again")
	})
}
