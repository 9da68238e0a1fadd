package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/interactionledger/ledger/adapters/sqlite"
	"github.com/interactionledger/ledger/cmd/ledger/internal/baseline"
	"github.com/interactionledger/ledger/cmd/ledger/internal/loadgen"
	"github.com/interactionledger/ledger/domain"
)

// seedHot gives the hot target n likes in the named server's store before
// it starts, each server in its own design: events through the Ledger for
// the ledger, rows for the baseline.
func seedHot(ctx context.Context, server, db string, n int) error {
	if n == 0 || server == "floor" { // the floor keeps nothing
		return nil
	}
	kinds := domain.MustKindSet(domain.DefaultKinds...)
	target, _ := domain.ParseTarget(loadgen.HotTarget)
	like, _ := domain.ParseKind("like")
	if server == "baseline" {
		s, err := baseline.Open(ctx, db, kinds)
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Seed(ctx, target, like, n)
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: db}, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	return seedLedger(ctx, domain.NewLedger(store, kinds, domain.LedgerConfig{}, nil), target, like, n)
}

// seedLedger has n distinct users like target, 256 at a time so that the
// store's group commit fills its transactions.
func seedLedger(ctx context.Context, l *domain.Ledger, target domain.Target, k domain.Kind, n int) error {
	const workers = 256
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				u, _ := domain.NewUserID(fmt.Sprintf("seed-%d", i))
				if _, err := l.Set(ctx, domain.SetRequest{User: u, Target: target, Kind: k, On: true}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
