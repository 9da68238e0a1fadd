package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/domain"
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
// locking it out: at most the calls in flight fail, with
// domain.ErrUnavailable, and the next ones go through on new connections.
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
	failures := 0
	for i := range 5 {
		_, err := s.Append(t.Context(), like(t, "after"+string(rune('a'+i)), "article/a1"))
		if err != nil {
			checkUnavailable(t, "append after pg_terminate_backend", err)
			failures++
		}
	}
	if failures > 1 {
		t.Fatalf("%d of 5 appends failed after the sessions were terminated; only the first may", failures)
	}
	if last, err := s.LastPosition(t.Context()); err != nil || last != int64(1+5-failures) {
		t.Fatalf("last position %d, %v; want %d", last, err, 1+5-failures)
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
