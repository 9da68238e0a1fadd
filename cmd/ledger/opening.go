package main

import (
	"context"
	"fmt"
	"sync/atomic"

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
}

func newOpeningViews() *openingViews {
	return &openingViews{Opening: httpapi.NewOpening("opening the views file")}
}

// progress reports a build's progress as the opening's status.
func (o *openingViews) progress(p projections.Progress) {
	o.Report(fmt.Sprintf("building the views file from the log (%s: %d of %d)", p.Phase, p.Done, p.Total))
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
