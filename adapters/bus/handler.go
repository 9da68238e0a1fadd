package bus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/backoff"
	"github.com/interactionledger/ledger/projections"
)

// maxBuffered bounds a handler's batch when a source never marks batch
// ends.
const maxBuffered = 10000

// ProjectionHandler returns a watermill handler that applies the events of
// its messages to the named projections of set, one transaction per batch
// for all of them (Set.ApplyAll).
//
// Messages are buffered and acked until the one that ends a batch
// (MetaBatchLast), which applies the whole buffer with set.Apply and is
// acked only if every projection commits. Acking before applying is safe
// because the projections' checkpoints, not the ack, are the durable
// progress. A batch that fails to apply (projections.ErrFailed: a full
// disk, a views file that needs a rebuild) is tried again, after a wait
// that doubles from retryMin to retryMax, until it applies or the
// message's context ends: the projection is reported failed meanwhile
// (Err, Status, log; a server's /readyz says so and its writes answer
// 503), the subscription waits on the batch, so no event is skipped, and
// once the cause is gone (space freed, ledger rebuild run beside the
// server) the projection goes on without a restart. Any other error
// Nacks the message, which stops the subscription; a new one starts from
// the lowest checkpoint, and each projection skips what it already has.
// Messages must arrive one at a time in position order, as Subscriber and
// an ordered broker deliver them. A message of AddProjections' in-process
// subscription carries a whole read batch in its context and is applied
// at once.
func ProjectionHandler(set *projections.Set, names ...string) message.NoPublishHandlerFunc {
	a := &applier{set: set, names: names}
	return a.handle
}

type applier struct {
	set   *projections.Set
	names []string
	mu    sync.Mutex
	buf   []domain.Event
}

// retryMin and retryMax bound the wait before a failed batch is applied
// again.
const retryMin, retryMax = 100 * time.Millisecond, 5 * time.Second

// apply applies batch, trying again while its projection fails (see
// ProjectionHandler).
func (a *applier) apply(ctx context.Context, batch []domain.Event) error {
	wait := backoff.Backoff{Min: retryMin, Max: retryMax}
	for {
		err := a.set.ApplyAll(ctx, a.names, batch)
		if err == nil || !errors.Is(err, projections.ErrFailed) || ctx.Err() != nil {
			return err
		}
		if !backoff.Sleep(ctx, wait.Next()) {
			return ctx.Err()
		}
	}
}

func (a *applier) handle(msg *message.Message) error {
	if batch, ok := batchOf(msg); ok {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.buf = nil
		return a.apply(msg.Context(), batch)
	}
	e, err := EventOf(msg)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.buf = nil
		return err
	}
	if n := len(a.buf); n > 0 && e.Position <= a.buf[n-1].Position {
		// A redelivery from an earlier position: what was buffered is
		// delivered again, so start over from here.
		a.buf = a.buf[:0]
	}
	a.buf = append(a.buf, e)
	if !endsBatch(msg) && len(a.buf) < maxBuffered {
		return nil
	}
	batch := a.buf
	a.buf = nil
	return a.apply(msg.Context(), batch)
}

// HandlerName returns the router handler name of a projection.
func HandlerName(projection string) string { return "projection." + projection }

// AllHandlerName is the name of the one router handler AddProjections adds.
const AllHandlerName = "projections"

// AddProjections adds one consumer handler to router that feeds every
// projection of set from one Subscriber tailing store from the lowest
// checkpoint: the log is read and decoded once, not once per projection.
// A projection that fails holds them all, loudly, and is tried again
// until it applies (see ProjectionHandler); none ever skips an event. Run
// the router to start; Close it to stop.
// cfg.StartAfter is ignored. It returns the subscriber's config error.
func AddProjections(router *message.Router, store domain.Tailable, set *projections.Set, cfg SubscriberConfig, log *slog.Logger) error {
	cfg.StartAfter = set.LowestCheckpoint
	sub, err := NewSubscriber(store, cfg, log)
	if err != nil {
		return err
	}
	sub.batched = true // its one handler, ProjectionHandler's, takes batches whole
	router.AddConsumerHandler(AllHandlerName, DefaultTopic, sub, ProjectionHandler(set, set.Names()...))
	return nil
}

// NewRouter returns a watermill router with no middleware (see the package
// doc for why) logging to log; a nil logger discards. The router's
// per-message trace and debug lines are dropped before they are built:
// formatting them cost more than applying the events.
func NewRouter(log *slog.Logger) (*message.Router, error) {
	var logger watermill.LoggerAdapter = watermill.NopLogger{}
	if log != nil {
		logger = quietLogger{watermill.NewSlogLogger(log)}
	}
	return message.NewRouter(message.RouterConfig{}, logger)
}

// quietLogger passes on errors and info lines only.
type quietLogger struct{ watermill.LoggerAdapter }

func (quietLogger) Debug(string, watermill.LogFields) {}
func (quietLogger) Trace(string, watermill.LogFields) {}
func (q quietLogger) With(f watermill.LogFields) watermill.LoggerAdapter {
	return quietLogger{q.LoggerAdapter.With(f)}
}
