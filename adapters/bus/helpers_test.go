package bus_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

var kinds = domain.MustKindSet("like", "collect")

// MustStore opens a real SQLite store at path (a temp file when "").
func MustStore(tb testing.TB, path string) *sqlite.EventStore {
	tb.Helper()
	if path == "" {
		path = filepath.Join(tb.TempDir(), "ledger.db")
	}
	s, err := sqlite.Open(context.Background(), sqlite.Config{Path: path, Synchronous: "NORMAL"}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// MustSet opens the views file at path over store.
func MustSet(tb testing.TB, path string, store domain.EventStore) *projections.Set {
	tb.Helper()
	s, err := projections.Open(context.Background(), projections.Config{Path: path, Kinds: kinds}, store, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// pipeline is a running router applying the store to a set.
type pipeline struct {
	router *message.Router
	done   chan error
}

// MustRun starts a router with one store subscriber per projection and
// returns once it is running.
func MustRun(tb testing.TB, store domain.Tailable, set *projections.Set) *pipeline {
	tb.Helper()
	r, err := bus.NewRouter(nil)
	if err != nil {
		tb.Fatal(err)
	}
	// Small batches in tests, so that stops and restarts fall mid-batch.
	cfg := bus.SubscriberConfig{PollInterval: 20 * time.Millisecond, BatchSize: 50}
	if _, ok := tb.(*testing.B); ok {
		cfg.BatchSize = 0 // the default
	}
	if err := bus.AddProjections(r, store, set, cfg, nil); err != nil {
		tb.Fatal(err)
	}
	p := &pipeline{router: r, done: make(chan error, 1)}
	go func() { p.done <- r.Run(context.Background()) }()
	<-r.Running()
	tb.Cleanup(p.stop)
	return p
}

// stop closes the router and waits for Run to return.
func (p *pipeline) stop() {
	if p.router.IsClosed() {
		return
	}
	p.router.Close()
	<-p.done
}

func mustParse[T any](tb testing.TB, f func(string) (T, error), s string) T {
	tb.Helper()
	v, err := f(s)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// set turns kind k on or off through the Ledger and returns the outcome.
func set(tb testing.TB, l *domain.Ledger, user, target, kind string, on bool) domain.Outcome {
	tb.Helper()
	out, err := l.Set(context.Background(), domain.SetRequest{
		User:   mustParse(tb, domain.NewUserID, user),
		Target: mustParse(tb, domain.ParseTarget, target),
		Kind:   mustParse(tb, domain.ParseKind, kind),
		On:     on,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
