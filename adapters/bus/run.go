package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// Pipeline is a running router that feeds a projections.Set from a
// store's log (AddProjections): what a program serving reads runs beside
// its server. Close it before the set and the store.
type Pipeline struct {
	router  *message.Router
	stopped chan struct{}
	err     error // the router's Run error, set before stopped is closed
}

// StartProjections makes a router (NewRouter) feeding set from store
// (AddProjections), runs it and returns once it is running, or with the
// error that stopped it before. It runs until Close, not until ctx ends
// (ctx gives it only its values): a program that shuts down drains its
// writes first, and those wait for their events to be applied.
func StartProjections(ctx context.Context, store domain.Tailable, set *projections.Set, cfg SubscriberConfig, log *slog.Logger) (*Pipeline, error) {
	router, err := NewRouter(log)
	if err != nil {
		return nil, err
	}
	if err := AddProjections(router, store, set, cfg, log); err != nil {
		return nil, err
	}
	p := &Pipeline{router: router, stopped: make(chan struct{})}
	go func() {
		p.err = router.Run(context.WithoutCancel(ctx))
		close(p.stopped)
	}()
	select {
	case <-router.Running():
		return p, nil
	case <-p.stopped:
		return nil, p.runErr()
	}
}

// Stopped is closed when the router has stopped: after Close, or on its
// own (a subscription that failed), which a program serving reads should
// treat as fatal, since its views then stop moving.
func (p *Pipeline) Stopped() <-chan struct{} { return p.stopped }

// Close stops the router, letting the batch being applied finish, and
// waits for it. It returns the router's error, if it failed.
func (p *Pipeline) Close() error {
	cerr := p.router.Close()
	<-p.stopped
	return errors.Join(p.runErr(), cerr)
}

func (p *Pipeline) runErr() error {
	if p.err == nil {
		return nil
	}
	return fmt.Errorf("projection pipeline: %w", p.err)
}
