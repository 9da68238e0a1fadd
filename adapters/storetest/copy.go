package storetest

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/domain"
)

// RunCopy runs the logcopy.Store contract suite: the stores open returns
// must implement logcopy.Store and io.Closer. Each subtest copies a log
// from one fresh store into another of the same kind.
func RunCopy(t *testing.T, open Opener) {
	t.Run("OK", func(t *testing.T) { testCopyOK(t, open) })
	t.Run("ErrNotEmpty", func(t *testing.T) { testCopyNotEmpty(t, open) })
	t.Run("Interrupted", func(t *testing.T) { testCopyInterrupted(t, open) })
	t.Run("SealFailed", func(t *testing.T) { testCopySealFailed(t, open) })
}

// copyPair opens a source and a destination in t's directory.
func copyPair(t *testing.T, open Opener) (src, dst domain.EventStore, dstPath string) {
	dir := t.TempDir()
	dstPath = filepath.Join(dir, "dst.db")
	return open(t, filepath.Join(dir, "src.db")), open(t, dstPath), dstPath
}

// fillForCopy appends events of several streams (one with metadata) and
// idempotency records with and without events, and returns the streams
// and the users' keys.
func fillForCopy(t *testing.T, s domain.EventStore) ([]domain.StreamID, map[string]domain.UserID) {
	t.Helper()
	var streams []domain.StreamID
	keys := map[string]domain.UserID{}
	for i := range 6 {
		st := MustStream(t, name("u", i%3), name("article/a", i))
		req := request(t, st, 0, "like", true, false, true)
		req.Events[0].Metadata = domain.MustMetadata(map[string]string{"request_id": name("r-", i), "note": "ünïcode 'quoted'"})
		if i%2 == 0 {
			req.Idempotency = &domain.IdempotencyRecord{User: st.User, Key: name("key-", i), RequestHash: name("hash-", i),
				Outcome: domain.Outcome{Changed: true, Active: true, State: req.State, StreamVersion: 3}}
			keys[req.Idempotency.Key] = st.User
		}
		MustAppend(t, s, req)
		streams = append(streams, st)
	}
	// A record whose command changed nothing: no event.
	st := streams[1]
	rec := &domain.IdempotencyRecord{User: st.User, Key: "key-noop", RequestHash: "hash-noop",
		Outcome: domain.Outcome{Active: true, State: mustSnapshot(t, s, st).State, StreamVersion: 3, Position: 6}}
	MustAppend(t, s, domain.AppendRequest{Stream: st, ExpectedVersion: 3, State: rec.Outcome.State, Idempotency: rec})
	keys["key-noop"] = st.User
	return streams, keys
}

func mustCopy(t *testing.T, src, dst domain.EventStore, to string) logcopy.Report {
	t.Helper()
	rep, err := logcopy.Copy(t.Context(), src.(logcopy.Store), dst.(logcopy.Store), to, nil)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	return rep
}

// reopen closes s and opens path again: a store opened before a copy
// into it knows nothing of what the copy wrote (its identity, its
// streams), as a node started before the copy would not.
func reopen(t *testing.T, open Opener, s domain.EventStore, path string) domain.EventStore {
	t.Helper()
	if err := s.(io.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	return open(t, path)
}

func testCopyOK(t *testing.T, open Opener) {
	src, dst, dstPath := copyPair(t, open)
	streams, keys := fillForCopy(t, src)
	rep := mustCopy(t, src, dst, "the-destination")
	if rep.Resumed || rep.Source.Events != 18 || rep.Source.Head != 18 || rep.Source.Streams != 6 || rep.Source.Idempotency != 4 {
		t.Fatalf("report %+v, want 18 events, 6 streams, 4 records", rep)
	}
	dst = reopen(t, open, dst, dstPath)
	if dst.LogID() != src.LogID() {
		t.Fatalf("destination's log %s, source's %s", dst.LogID(), src.LogID())
	}
	checkEvents(t, MustReadAll(t, dst, domain.EventFilter{}), MustReadAll(t, src, domain.EventFilter{}))
	for _, st := range streams {
		if got, want := mustSnapshot(t, dst, st), mustSnapshot(t, src, st); got.Version != want.Version ||
			got.LastPosition != want.LastPosition || got.State.String() != want.State.String() {
			t.Errorf("stream %s: %+v, source's %+v", st, got, want)
		}
	}
	for key, user := range keys {
		want, _, _ := src.Idempotency(t.Context(), user, key)
		got, ok, err := dst.Idempotency(t.Context(), user, key)
		if err != nil || !ok {
			t.Fatalf("key %s: %t, %v", key, ok, err)
		}
		checkRecord(t, got, want)
		if !got.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("key %s created %s, source's %s", key, got.CreatedAt, want.CreatedAt)
		}
	}
	// The destination appends after the head, to a copied stream and to a new one.
	res := MustAppend(t, dst, request(t, streams[0], 3, "like", false))
	res2 := MustAppend(t, dst, request(t, MustStream(t, "new", "article/new"), 0, "like", true))
	if res.LastPosition != 19 || res2.LastPosition != 20 {
		t.Fatalf("appends after the copy at %d and %d, want 19 and 20", res.LastPosition, res2.LastPosition)
	}
	// Its constraints hold, under the names the store's errors know.
	dup := request(t, MustStream(t, "dup", "article/d"), 0, "like", true)
	dup.Events[0].ID = MustReadAll(t, src, domain.EventFilter{Limit: 1})[0].ID
	if _, err := dst.Append(t.Context(), dup); !errors.Is(err, domain.ErrDuplicateEvent) {
		t.Fatalf("append of a copied event's id: %v, want ErrDuplicateEvent", err)
	}
	// The source is sealed: its writes fail naming the destination; its reads work.
	_, err := src.Append(t.Context(), request(t, streams[0], 3, "like", false))
	if !errors.Is(err, domain.ErrLogMoved) || !errors.Is(err, domain.ErrUnavailable) || !strings.Contains(err.Error(), "the-destination") {
		t.Fatalf("append to the sealed source: %v, want ErrLogMoved naming the destination", err)
	}
	_, err = src.Append(t.Context(), request(t, MustStream(t, "new", "article/new"), 0, "like", true))
	if !errors.Is(err, domain.ErrLogMoved) {
		t.Fatalf("append of a new stream to the sealed source: %v, want ErrLogMoved", err)
	}
	checkCount(t, src, 18)
	// Copying it again is refused: it moved.
	if _, err := logcopy.Copy(t.Context(), src.(logcopy.Store), open(t, filepath.Join(t.TempDir(), "x.db")).(logcopy.Store), "x", nil); !errors.Is(err, domain.ErrLogMoved) {
		t.Fatalf("copy of a sealed log: %v, want ErrLogMoved", err)
	}
}

func testCopyNotEmpty(t *testing.T, open Opener) {
	src, dst, _ := copyPair(t, open)
	fillForCopy(t, src)
	MustAppend(t, dst, request(t, MustStream(t, "other", "article/o"), 0, "like", true))
	id := dst.LogID()
	_, err := logcopy.Copy(t.Context(), src.(logcopy.Store), dst.(logcopy.Store), "dst", nil)
	if !errors.Is(err, logcopy.ErrNotEmpty) {
		t.Fatalf("copy into a log with an event: %v, want ErrNotEmpty", err)
	}
	checkCount(t, dst, 1)
	if dst.LogID() != id {
		t.Fatal("the destination's identity changed")
	}
	// Not sealed: the source still takes writes.
	MustAppend(t, src, request(t, MustStream(t, "more", "article/m"), 0, "like", true))
}

func testCopyInterrupted(t *testing.T, open Opener) {
	src, dst, dstPath := copyPair(t, open)
	for i := range 2500 / 5 {
		MustAppend(t, src, request(t, MustStream(t, name("u", i), "article/a"), 0, "like", true, false, true, false, true))
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := logcopy.Copy(ctx, src.(logcopy.Store), dst.(logcopy.Store), "dst", func(p logcopy.Progress) {
		cancel() // at the first thousand events, of 2,500
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled copy: %v, want context.Canceled", err)
	}
	dst = reopen(t, open, dst, dstPath)
	checkCount(t, dst, 0)
	if dst.LogID() == src.LogID() {
		t.Fatal("the destination took the source's identity")
	}
	MustAppend(t, src, request(t, MustStream(t, "more", "article/m"), 0, "like", true)) // not sealed
	rep := mustCopy(t, src, dst, "dst")
	if rep.Source.Events != 2501 {
		t.Fatalf("the copy run again copied %d events, want 2501", rep.Source.Events)
	}
	checkCount(t, reopen(t, open, dst, dstPath), 2501)
}

// failingSeal is a logcopy.Store whose transactions fail to seal: a copy
// committed in the destination whose seal of the source never happened
// (a crash in between).
type failingSeal struct{ logcopy.Store }

func (f failingSeal) BeginCopy(ctx context.Context) (logcopy.Tx, error) {
	tx, err := f.Store.BeginCopy(ctx)
	return failingSealTx{tx}, err
}

type failingSealTx struct{ logcopy.Tx }

func (failingSealTx) Seal(context.Context, logcopy.Moved) error { return errors.New("crashed") }

func testCopySealFailed(t *testing.T, open Opener) {
	src, dst, dstPath := copyPair(t, open)
	fillForCopy(t, src)
	_, err := logcopy.Copy(t.Context(), failingSeal{src.(logcopy.Store)}, dst.(logcopy.Store), "dst", nil)
	if err == nil || !strings.Contains(err.Error(), "run the same command again") {
		t.Fatalf("copy whose seal failed: %v, want an error saying to run it again", err)
	}
	dst = reopen(t, open, dst, dstPath)
	checkCount(t, dst, 18)
	rep := mustCopy(t, src, dst, "dst")
	if !rep.Resumed || rep.Source.Events != 18 {
		t.Fatalf("copy run again: %+v, want resumed with 18 events", rep)
	}
	checkCount(t, dst, 18) // nothing copied twice
	if _, err := src.Append(t.Context(), request(t, MustStream(t, "more", "article/m"), 0, "like", true)); !errors.Is(err, domain.ErrLogMoved) {
		t.Fatalf("append to the source sealed by the second run: %v, want ErrLogMoved", err)
	}
}
