package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

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
	unwatch context.CancelFunc
	watched chan struct{} // closed when the head watch has ended
}

// headWatchEvery is how often a pipeline checks that the log has not moved
// under the set: its head behind what the set applied, or another event at
// the position of the last event it applied (projections.Set.WatchHead).
const headWatchEvery = time.Second

// StartProjections makes a router (NewRouter) feeding set from store
// (AddProjections), runs it and returns once it is running, or with the
// error that stopped it before. It runs until Close, not until ctx ends
// (ctx gives it only its values): a program that shuts down drains its
// writes first, and those wait for their events to be applied. Beside it,
// set.WatchHead checks every second that the log has not moved under the
// program (an older copy restored: its head behind what the set applied,
// or another event where the set applied its last), which stops the set's
// reads. A program whose writes append to store calls set.Appending
// around each append as well (see its doc).
func StartProjections(ctx context.Context, store domain.Tailable, set *projections.Set, cfg SubscriberConfig, log *slog.Logger) (*Pipeline, error) {
	router, err := NewRouter(log)
	if err != nil {
		return nil, err
	}
	if err := AddProjections(router, store, set, cfg, log); err != nil {
		return nil, err
	}
	p := &Pipeline{router: router, stopped: make(chan struct{}), watched: make(chan struct{})}
	go func() {
		p.err = router.Run(context.WithoutCancel(ctx))
		close(p.stopped)
	}()
	select {
	case <-router.Running():
	case <-p.stopped:
		if p.err != nil { // else it ran, then stopped at once: Stopped says so
			return nil, p.runErr()
		}
	}
	wctx, unwatch := context.WithCancel(context.WithoutCancel(ctx))
	p.unwatch = unwatch
	go func() {
		defer close(p.watched)
		set.WatchHead(wctx, store, headWatchEvery)
	}()
	return p, nil
}

// Stopped is closed when the router has stopped: after Close, or on its
// own (a subscription that failed), which a program serving reads should
// treat as fatal, since its views then stop moving.
func (p *Pipeline) Stopped() <-chan struct{} { return p.stopped }

// Close stops the router, letting the batch being applied finish, and
// waits for it. It returns the router's error, if it failed.
func (p *Pipeline) Close() error {
	p.unwatch()
	<-p.watched
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
