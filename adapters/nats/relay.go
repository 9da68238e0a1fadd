package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/google/uuid"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/adapters/logcopy"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/backoff"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Relay forwards the event log into a JetStream stream, exactly once and
// in position order (see the package doc). Run it once per process; its
// methods are safe for concurrent use.
type Relay struct {
	store   domain.Tailable
	cfg     Config
	log     *slog.Logger
	holder  string
	relayed atomic.Pointer[relayedEvent] // nil before the first session resumed
	head    atomic.Int64                 // the log's last position, as last read
	// relaying is true while a session holds the lock and has resumed.
	relaying atomic.Bool
}

// relayedEvent is the last event the stream holds: its position and id are
// kept together so that the head watcher never checks one event's position
// against another's id.
type relayedEvent struct {
	pos int64
	id  uuid.UUID
}

// NewRelay returns a relay over store. A nil logger discards. It returns
// the config's validation error.
func NewRelay(store domain.Tailable, cfg Config, log *slog.Logger) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s pid %d %s", host, os.Getpid(), uuid.NewString()[:8])
	return &Relay{store: store, cfg: cfg, log: log.With("stream", cfg.Stream), holder: holder}, nil
}

// Relayed returns the log position of the last event the stream holds, as
// far as this relay knows (0 before its first session resumed).
func (r *Relay) Relayed() int64 {
	if last := r.relayed.Load(); last != nil {
		return last.pos
	}
	return 0
}

// Run relays until ctx ends, then returns nil. A failure (NATS unreachable
// or gone, a publish not acknowledged, the lock lost) is logged and
// retried after an exponential backoff, from the stream's last message, so
// nothing is lost or repeated. It returns an error wrapping
// ErrStreamMismatch when the stream cannot belong to this log,
// domain.ErrLogReplaced when the store's log was replaced under it, or
// domain.ErrLogMoved when the log is sealed, at the start or while it
// runs (ledger import log moved it: the relay of its new store goes on in
// the same stream); retrying would not help.
func (r *Relay) Run(ctx context.Context) error {
	if err := r.checkNotMoved(ctx); isPermanent(err) {
		return fmt.Errorf("relay to stream %s: %w", r.cfg.Stream, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	wg.Go(func() { r.watchHead(ctx, cancel) })
	b := backoff.Backoff{Min: r.cfg.BackoffMin, Max: r.cfg.BackoffMax}
	for {
		before := r.Relayed()
		err := r.session(ctx)
		if ctx.Err() != nil {
			if cause := context.Cause(ctx); errors.Is(cause, domain.ErrLogReplaced) {
				return fmt.Errorf("relay to stream %s: its log was replaced, so the stream ends with the old log's events "+
					"(delete it to relay the new log from its start): %w", r.cfg.Stream, cause)
			}
			if cause := context.Cause(ctx); isPermanent(cause) {
				return fmt.Errorf("relay to stream %s: %w", r.cfg.Stream, cause)
			}
			return nil
		}
		if isPermanent(err) {
			return fmt.Errorf("relay to stream %s: %w", r.cfg.Stream, err)
		}
		if r.Relayed() != before {
			b.Reset()
		}
		r.cfg.Metrics.failed()
		delay := b.Next()
		r.log.ErrorContext(ctx, "relay failed; retrying from the stream's last message",
			"nats", RedactURL(r.cfg.URL), "err", err, "retry_in", delay.Round(time.Millisecond))
		if !backoff.Sleep(ctx, delay) {
			return nil
		}
	}
}

// session connects, takes the lock, resumes from the stream's last
// message and publishes until an error or until ctx ends.
func (r *Relay) session(ctx context.Context) error {
	nc, err := natsgo.Connect(r.cfg.URL, natsgo.Name("ledger relay "+r.holder), natsgo.Timeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", RedactURL(r.cfg.URL), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	l, err := r.acquire(ctx, js)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancelCause(ctx)
	var keeper sync.WaitGroup
	keeper.Go(func() { l.keep(sctx, cancel) })
	r.cfg.Metrics.holding(true)
	defer func() {
		r.relaying.Store(false)
		r.cfg.Metrics.holding(false)
		cancel(nil)
		keeper.Wait()
		if !errors.Is(context.Cause(sctx), errLockLost) { // else it is not ours to delete
			l.release(ctx)
		}
	}()
	err = r.relayFromStream(sctx, nc, js)
	if cause := context.Cause(sctx); errors.Is(cause, errLockLost) {
		return cause
	}
	return err
}

// relayFromStream resumes after the stream's last message and publishes.
func (r *Relay) relayFromStream(ctx context.Context, nc *natsgo.Conn, js jetstream.JetStream) error {
	s, err := r.ensureStream(ctx, js)
	if err != nil {
		return err
	}
	at, err := r.resume(ctx, s)
	if err != nil {
		return err
	}
	r.relayed.Store(&relayedEvent{pos: at.Position, id: at.ID})
	r.relaying.Store(true)
	r.cfg.Metrics.resumed(at.Position)
	r.log.InfoContext(ctx, "relaying", "after_position", at.Position, "stream_sequence", at.Sequence,
		"subjects", r.cfg.SubjectPrefix+".<kind>.<target_type>")
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         Marshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			ConnectOptions: []natsgo.JSOpt{natsgo.MaxWait(r.cfg.PublishTimeout)},
		},
	}, watermill.NewSlogLogger(r.log))
	if err != nil {
		return fmt.Errorf("watermill-nats publisher: %w", err)
	}
	// pub.Close would close nc, which the session still needs to release
	// its lock; session closes nc itself.
	return r.publish(ctx, pub, at)
}

// publish tails the log through the bus Subscriber and publishes each
// event after the resume point, in order, each acknowledged before the
// next. It returns ctx's cause when ctx ends, or the first failure.
//
// Before the first event of each batch the Subscriber read, it checks that
// the log still holds the last relayed event at its position (one read of
// one row a batch). An older copy of the log restored under the relay
// issues the positions after its head again, with other events; a batch
// read from it after the relayed position would publish them after the
// old ones, and its events alone cannot show it. Reading the log after the
// batch was read catches every such batch before any of it is published.
func (r *Relay) publish(ctx context.Context, pub *wmnats.Publisher, at resumePoint) error {
	sub, err := bus.NewSubscriber(r.store, bus.SubscriberConfig{
		StartAfter:   func(context.Context) (int64, error) { return at.Position, nil },
		PollInterval: r.cfg.PollInterval, BatchSize: r.cfg.BatchSize,
	}, r.log)
	if err != nil {
		return err
	}
	defer sub.Close()
	msgs, err := sub.Subscribe(ctx, r.cfg.Stream)
	if err != nil {
		return err
	}
	p := newProgress(r, at.Position)
	seq := at.Sequence
	batchStart := true
	for msg := range msgs {
		e, err := bus.EventOf(msg)
		if err != nil {
			return err
		}
		if batchStart {
			if err := r.checkHolds(ctx, r.relayed.Load()); err != nil {
				return err
			}
		}
		batchStart = msg.Metadata.Get(bus.MetaBatchLast) != "false"
		subject := r.subject(e)
		msg.Metadata.Set(MetaExpectedLastSequence, strconv.FormatUint(seq, 10))
		if id := domain.LogIDOf(r.store); id != "" {
			msg.Metadata.Set(MetaLog, id)
		}
		if err := pub.Publish(subject, msg); err != nil {
			// No Nack: the subscription ends with this session, and the next
			// one starts from the stream's last message, not from here.
			err = fmt.Errorf("publish position %d (%d bytes) to %s: %w", e.Position, len(msg.Payload), subject, err)
			if isTooLarge(err) { // refused again at every try
				return permanent(fmt.Errorf("%w: raise the stream's max msg size, or delete the stream", err))
			}
			return err
		}
		seq++
		r.relayed.Store(&relayedEvent{pos: e.Position, id: e.ID})
		r.cfg.Metrics.relayed(e.Position)
		msg.Ack()
		p.tick(ctx, e.Position)
	}
	return context.Cause(ctx)
}

// subject is <prefix>.<kind>.<target_type>; both names are subject-safe
// by the domain's rules (lower-case letters, digits, '_' and '-').
func (r *Relay) subject(e domain.Event) string {
	return r.cfg.SubjectPrefix + "." + e.Kind.String() + "." + e.Target.Type()
}

// headReadTimeout bounds one read of the log's head: a database that
// stops answering (a partition that keeps the sockets open) is reported
// within it rather than never.
var (
	headReadTimeout = 5 * time.Second
	headWarnEvery   = 30 * time.Second
)

// watchHead reads the log's last position every second for the lag metric.
// While the head cannot be read it logs so every headWarnEvery and counts
// each failure, so that a relay stalled on an unanswering database is seen
// (its lag gauge keeps the last value it could compute). A log replaced
// under the relay, or one that no longer holds the last relayed event
// (readHead), stops it through stop: the store then reads none of the new
// log's events, or reissues positions the stream holds, and retrying
// cannot help.
func (r *Relay) watchHead(ctx context.Context, stop context.CancelCauseFunc) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var failingSince, lastWarn time.Time
	for {
		head, err := r.readHead(ctx)
		switch {
		case err == nil:
			failingSince = time.Time{}
			r.head.Store(head)
			r.cfg.Metrics.observeHead(head, r.Relayed(), r.relaying.Load())
		case isPermanent(err):
			stop(err)
			return
		case errors.Is(err, domain.ErrLogReplaced):
			r.cfg.Metrics.headReadFailed()
			stop(err)
			return
		case ctx.Err() == nil:
			r.cfg.Metrics.headReadFailed()
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(lastWarn) >= headWarnEvery {
				lastWarn = time.Now()
				r.log.WarnContext(ctx, "the log's head cannot be read; the relay may be stalled on the database",
					"for", time.Since(failingSince).Round(time.Second), "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readHead reads the log's last position and checks that the log still
// holds the last relayed event at its position. An older copy of the log
// restored under the relay reissues the positions after its own head with
// other events, which the relay, reading on after its last position, would
// skip: a head behind that position shows it, and so does another event
// at that position once the copy has grown past it again. What was relayed
// is read first, so an event relayed meanwhile cannot make a false alarm.
// It returns a permanent error wrapping ErrStreamMismatch when the log
// moved back.
func (r *Relay) readHead(ctx context.Context) (int64, error) {
	last := r.relayed.Load()
	ctx, cancel := context.WithTimeout(ctx, headReadTimeout)
	defer cancel()
	head, err := r.store.LastPosition(ctx)
	if err == nil {
		err = r.checkNotMoved(ctx)
	}
	switch {
	case err != nil || last == nil || last.pos == 0:
		return head, err
	case head < last.pos:
		return head, movedBack(head, last.pos)
	}
	return head, r.checkHolds(ctx, last)
}

// checkNotMoved returns a permanent error wrapping a *logcopy.MovedError
// (domain.ErrLogMoved) when the store's log is sealed (logcopy.Sealed):
// ledger import log moved it, and its new store, with the same identity
// and positions, is the one to relay into the stream. A relay kept on the old log would also hold the
// lock, and the new store's relay would wait as a standby for ever. A
// store that cannot tell, or a failed read, is nil: the next look tells.
func (r *Relay) checkNotMoved(ctx context.Context) error {
	sealed, ok := r.store.(logcopy.Sealed)
	if !ok {
		return nil
	}
	m, moved, err := sealed.Moved(ctx)
	if err != nil || !moved {
		return nil
	}
	return permanent(fmt.Errorf("%w; relay it from there into the same stream, which goes on after its last message", m.Err()))
}

// checkHolds checks that the log holds last, a relayed event, at its
// position (nothing to check before the first event is relayed).
func (r *Relay) checkHolds(ctx context.Context, last *relayedEvent) error {
	if last == nil || last.pos == 0 {
		return nil
	}
	return r.checkLogHas(ctx, last.pos, last.id, "an older copy of the log restored?")
}

// movedBack is why a relay stops when its log's head falls behind what it
// relayed: an older copy of the log was restored under it.
func movedBack(head, relayed int64) error {
	return permanent(fmt.Errorf("the log's head %d is behind position %d, which the stream already holds "+
		"(an older copy of the log restored?): %w", head, relayed, ErrStreamMismatch))
}

// progress logs how far the relay got, at most every ProgressInterval.
type progress struct {
	r         *Relay
	next      time.Time
	since     time.Time
	sincePos  int64
	published int64
}

func newProgress(r *Relay, pos int64) *progress {
	now := time.Now()
	return &progress{r: r, next: now.Add(r.cfg.ProgressInterval), since: now, sincePos: pos}
}

func (p *progress) tick(ctx context.Context, pos int64) {
	p.published++
	now := time.Now()
	if now.Before(p.next) {
		return
	}
	rate := float64(pos-p.sincePos) / now.Sub(p.since).Seconds()
	head := max(p.r.head.Load(), pos)
	p.r.log.InfoContext(ctx, "relay progress", "position", pos, "log_position", head, "lag", head-pos,
		"published", p.published, "events_per_s", int64(rate))
	p.next, p.since, p.sincePos = now.Add(p.r.cfg.ProgressInterval), now, pos
}
