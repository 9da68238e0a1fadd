package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/adapters/httpapi"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// openingViews is a server's read model and ledger while its views file
// opens, which may mean building it from the whole log: the server
// answers from the start (httpapi.Opening: /healthz 200, everything that
// needs the views 503 "starting"), and these forward to the real ones
// once open. The server calls none of their methods but Applied before
// then.
type openingViews struct {
	*httpapi.Opening
	set    atomic.Pointer[projections.Set]
	ledger atomic.Pointer[domain.Ledger]

	log    *slog.Logger
	mu     sync.Mutex
	phase  string    // the build's phase last logged
	logged time.Time // when
}

// buildLogEvery is how often a build's progress is logged within a phase.
const buildLogEvery = 10 * time.Second

// newOpeningViews returns the opening of a server, its status first status.
func newOpeningViews(log *slog.Logger, status string) *openingViews {
	return &openingViews{Opening: httpapi.NewOpening(status), log: log}
}

// progress reports a build's progress as the opening's status, and logs it
// at each phase and every buildLogEvery: the log said nothing between
// "rebuilding projections" and "serving", tens of seconds for millions of
// events, to an operator who reads the log rather than /readyz.
func (o *openingViews) progress(p projections.Progress) {
	status := buildStatus(p)
	o.Report(status)
	if o.logDue(p.Phase) {
		o.log.Info("building the views file", "phase", p.Phase, "done", p.Done, "total", p.Total, "status", status)
	}
}

// logDue reports whether a progress report of phase is to be logged.
func (o *openingViews) logDue(phase string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if phase == o.phase && time.Since(o.logged) < buildLogEvery {
		return false
	}
	o.phase, o.logged = phase, time.Now()
	return true
}

// buildStatus says what a build of the views file is doing, in words an
// operator reading /readyz follows without the projections' phase names.
// It said "(done: N of N)" from the end of the build until the views were
// open, seconds more of catching up and loading them (8 s after a build of
// three million events), and "latest: N of M" counted interactions
// against events, so it stalled below M before the jump to "write".
func buildStatus(p projections.Progress) string {
	const building = "building the views file from the log"
	switch p.Phase {
	case "wait":
		return "waiting for another rebuild of the views file to end (ledger rebuild), to build it from the log"
	case "read":
		return fmt.Sprintf("%s: read %d of %d events", building, p.Done, p.Total)
	case "latest":
		return fmt.Sprintf("%s of %d events: read the latest state of %d interactions so far", building, p.Total, p.Done)
	case "write":
		return fmt.Sprintf("%s: writing the views of the events up to position %d of %d", building, p.Done, p.Total)
	case "copy":
		return fmt.Sprintf("%s of %d events: copying the interaction tables", building, p.Total)
	case "index":
		return fmt.Sprintf("%s of %d events: indexing the views", building, p.Total)
	case "swap":
		return fmt.Sprintf("%s of %d events: putting the new views in place", building, p.Total)
	case "done":
		return "built the views file from the log; catching up with the log's newest events and opening it"
	}
	return fmt.Sprintf("%s (%s: %d of %d)", building, p.Phase, p.Done, p.Total)
}

// open puts the opened views and the ledger writing beside them in place,
// and ends the opening.
func (o *openingViews) open(set *projections.Set, l *domain.Ledger) {
	o.set.Store(set)
	o.ledger.Store(l)
	o.Done()
}

func (o *openingViews) Target(ctx context.Context, t domain.Target, viewer *domain.UserID) (projections.TargetView, error) {
	return o.set.Load().Target(ctx, t, viewer)
}

func (o *openingViews) Targets(ctx context.Context, ts []domain.Target, viewer *domain.UserID) ([]projections.TargetView, error) {
	return o.set.Load().Targets(ctx, ts, viewer)
}

func (o *openingViews) Actors(ctx context.Context, t domain.Target, k domain.Kind, limit int, cursor string) (projections.Page[projections.Actor], error) {
	return o.set.Load().Actors(ctx, t, k, limit, cursor)
}

func (o *openingViews) Collection(ctx context.Context, u domain.UserID, k domain.Kind, targetType string, limit int, cursor string) (projections.Page[projections.Item], error) {
	return o.set.Load().Collection(ctx, u, k, targetType, limit, cursor)
}

// Applied is 0 until the views are open (the metrics' gauge reads it).
func (o *openingViews) Applied() int64 {
	if s := o.set.Load(); s != nil {
		return s.Applied()
	}
	return 0
}

func (o *openingViews) WaitFor(ctx context.Context, pos int64) error {
	return o.set.Load().WaitFor(ctx, pos)
}

func (o *openingViews) Err() error     { return o.set.Load().Err() }
func (o *openingViews) Stopped() error { return o.set.Load().Stopped() }

func (o *openingViews) Set(ctx context.Context, req domain.SetRequest) (domain.Outcome, error) {
	return o.ledger.Load().Set(ctx, req)
}

func (o *openingViews) Recorded(ctx context.Context, req domain.SetRequest) (domain.Outcome, bool, error) {
	return o.ledger.Load().Recorded(ctx, req)
}
