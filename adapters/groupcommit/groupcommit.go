package groupcommit

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/domain"
)

// Request states: the caller and the writer race to move a request out of
// pending; whoever wins decides whether it is written.
const (
	pending   int32 = iota
	taken           // the writer owns it and will answer
	cancelled       // the caller gave up (or Close failed it) before it was taken
)

// Request is one queued append, its events already encoded into the
// store's Rows by the caller's goroutine, so the writer only binds them.
// It is safe for use by one caller and one writer at a time.
type Request[Row any] struct {
	Req  domain.AppendRequest
	Rows []Row
	// Decide, when set, makes Req and Rows a candidate (DecideRequest's):
	// the writer decides the command against the stream as its
	// transaction finds it, and rewrites Req's events, version and state
	// and Rows to what it appends (none when the command changes
	// nothing). It leaves the outcome in Decided before it answers.
	Decide    *domain.DecideRequest
	Decided   domain.Outcome
	candidate []Row // the candidate's rows, which DecideAt hands out again
	// follows is the request of Decide.Follows; appended, the writer's
	// own, says that r's event is in the log or in the writer's open
	// transaction (Written, RolledBack), which DecideAt checks of follows.
	follows  *Request[Row]
	appended bool
	// ctx, set by Enqueue, is the caller's: the writer does not take the
	// request once it has ended, though the caller is not waiting yet.
	ctx    context.Context
	state  atomic.Int32
	answer chan Result // buffered: the writer never blocks on it
}

// Result is the writer's answer to one request.
type Result struct {
	Res domain.AppendResult
	Err error
}

// NewRequest returns a pending request.
func NewRequest[Row any](req domain.AppendRequest, rows []Row) *Request[Row] {
	return &Request[Row]{Req: req, Rows: rows, answer: make(chan Result, 1)}
}

// NewDecideRequest returns a pending decided request: cand, req's
// candidate append (domain.DecideRequest.Candidate), and rows, its event
// encoded, which the writer rewrites with DecideAt.
func NewDecideRequest[Row any](req domain.DecideRequest, cand domain.AppendRequest, rows []Row) *Request[Row] {
	r := NewRequest(cand, rows)
	r.Decide, r.candidate = &req, rows
	return r
}

// DecideAt decides r's command against the stream at snap (domain.Decided)
// and rewrites r to the append it makes: Req's events, state and expected
// version, the idempotency record's outcome, Decided, and Rows (the
// candidate's row, or none: a command that changes nothing). It returns
// the version of the event to append, which the caller sets in its row,
// or 0 for none; a *domain.StaleVersionError (domain.ErrPreconditionFailed)
// when the stream is not at the request's expected version, domain.ErrFollowedNotAppended when the
// command it follows is neither appended nor stored (stored looks its
// event id up in the writer's transaction; it is called only then). A
// writer may decide a request again (a transaction retried): each call
// starts from the candidate.
func (r *Request[Row]) DecideAt(snap domain.Snapshot, stored func(uuid.UUID) (bool, error)) (version int64, err error) {
	d := r.Decide
	if d.ExpectedVersion != nil && *d.ExpectedVersion != snap.Version {
		return 0, fmt.Errorf("append %s: %w", r.Req.Stream, &domain.StaleVersionError{Expected: *d.ExpectedVersion, Stream: snap})
	}
	if err := r.checkFollows(stored); err != nil {
		return 0, err
	}
	events, out := domain.Decided(snap, d.Command)
	r.Decided = out
	r.Req.ExpectedVersion, r.Req.State, r.Req.Events = snap.Version, out.State, events
	if rec := r.Req.Idempotency; rec != nil {
		rec.Outcome = out
	}
	r.Rows = r.candidate[:len(events)]
	if len(events) == 0 {
		return 0, nil
	}
	return events[0].StreamVersion, nil
}

// checkFollows is DecideRequest.Follows's check: the one r follows
// appended its event in the writer's open transaction or before, or, when
// the writer did not append it, its event is stored, which stored looks
// up (an import run again: it appended it then).
func (r *Request[Row]) checkFollows(stored func(uuid.UUID) (bool, error)) error {
	id, unwritten := r.FollowedEvent()
	if !unwritten {
		return nil
	}
	switch in, err := stored(id); {
	case err != nil:
		return err
	case !in:
		return fmt.Errorf("decide %s: %w", r.Req.Stream, domain.ErrFollowedNotAppended)
	}
	return nil
}

// FollowedEvent is the event id of the command r follows while the
// writer has not appended it: the id DecideAt may ask its stored to look
// up. ok is false when r follows none, or it is appended.
func (r *Request[Row]) FollowedEvent() (id uuid.UUID, ok bool) {
	if f := r.follows; f != nil && !f.appended {
		return f.Decide.Command.EventID, true
	}
	return uuid.Nil, false
}

// Written records, for a later request that follows r (DecideAt), what
// the writer did with r in its open transaction: err is r's failure, nil
// when its rows are written. The writer calls it for each request it
// writes or fails on its own, before it decides the next.
func (r *Request[Row]) Written(err error) { r.appended = err == nil && len(r.Rows) > 0 }

// RolledBack records that none of batch's rows were written: the writer
// calls it when a transaction fails as a whole.
func RolledBack[Row any](batch []*Request[Row]) {
	for _, r := range batch {
		r.appended = false
	}
}

// Answer hands the writer's outcome to the caller. The writer calls it once
// per request it took, after its last DecideAt: r lets go of the request
// it follows, so that a stream's requests queued one behind the other do
// not all stay reachable from the last.
func (r *Request[Row]) Answer(res Result) {
	r.follows = nil
	r.answer <- res
}

// Wait returns the writer's answer. When ctx ends, or the writer exits
// (writerDone closes), while the request is still pending, it gives up:
// the request is never written and Wait returns ctx's error or
// domain.ErrClosed. Once the writer has taken it, Wait waits for the real
// outcome whatever happens to ctx.
func (r *Request[Row]) Wait(ctx context.Context, writerDone <-chan struct{}) (domain.AppendResult, error) {
	var giveUp error
	select {
	case out := <-r.answer:
		return out.Res, out.Err
	case <-ctx.Done():
		giveUp = ctx.Err()
	case <-writerDone:
		giveUp = fmt.Errorf("append %s: %w", r.Req.Stream, domain.ErrClosed)
	}
	// An enqueued request the writer cancelled (its context ended) gets
	// no answer.
	if r.state.CompareAndSwap(pending, cancelled) || r.ctx != nil && r.state.Load() == cancelled {
		return domain.AppendResult{}, giveUp
	}
	out := <-r.answer
	return out.Res, out.Err
}

// TryTake moves r from pending to taken, after which the writer owns it
// and must answer it; it is false when the caller gave up first, or the
// context it was enqueued with (Enqueue) has ended: it is then cancelled,
// and its Wait returns the context's error.
func (r *Request[Row]) TryTake() bool {
	if r.ctx != nil && r.ctx.Err() != nil {
		r.state.CompareAndSwap(pending, cancelled)
		return false
	}
	return r.state.CompareAndSwap(pending, taken)
}

// Take returns the requests of batch that the writer now owns, leaving out
// those whose caller gave up; it reuses batch's array.
func Take[Row any](batch []*Request[Row]) []*Request[Row] {
	out := batch[:0]
	for _, r := range batch {
		if r.TryTake() {
			out = append(out, r)
		}
	}
	return out
}

// Queue carries requests from appending goroutines to a store's writer.
type Queue[Row any] struct {
	ch       chan *Request[Row]
	quit     <-chan struct{}
	maxBatch int
	maxDelay time.Duration
}

// NewQueue returns a queue for batches of at most maxBatch requests,
// lingering up to maxDelay to fill one (see Gather); quit closes when the
// store closes.
func NewQueue[Row any](maxBatch int, maxDelay time.Duration, quit <-chan struct{}) *Queue[Row] {
	return &Queue[Row]{ch: make(chan *Request[Row], maxBatch*4), quit: quit, maxBatch: maxBatch, maxDelay: maxDelay}
}

// Submit queues r. It returns ctx's error when ctx ends first and
// domain.ErrClosed when the store closes; r is then not queued.
func (q *Queue[Row]) Submit(ctx context.Context, r *Request[Row]) error {
	select {
	case q.ch <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-q.quit:
		return fmt.Errorf("append %s: %w", r.Req.Stream, domain.ErrClosed)
	}
}

// C is where the writer receives the first request of each batch.
func (q *Queue[Row]) C() <-chan *Request[Row] { return q.ch }

// Len returns how many requests are queued.
func (q *Queue[Row]) Len() int { return len(q.ch) }

// Gather adds whatever is queued to batch, up to the batch limit. When the
// previous batch held prev > 1 requests it lingers up to the delay, until
// the batch is as large as the previous one, so concurrent appenders share
// commits; a lone appender is never delayed.
func (q *Queue[Row]) Gather(batch []*Request[Row], prev int) []*Request[Row] {
	l := q.Linger(len(batch), prev)
	for r := l.Next(); r != nil; r = l.Next() {
		batch = append(batch, r)
	}
	return batch
}

// Linger hands a writer the requests of one batch one at a time, as
// Gather would gather them, so that it can write each while the next are
// on their way. Use it from one goroutine.
type Linger[Row any] struct {
	q     *Queue[Row]
	n     int // requests in the batch so far
	want  int // lingering ends once the batch holds this many
	timer *time.Timer
}

// Linger starts a batch that holds have requests already; prev is the
// size of the previous batch (see Gather).
func (q *Queue[Row]) Linger(have, prev int) *Linger[Row] {
	return &Linger[Row]{q: q, n: have, want: min(prev, q.maxBatch)}
}

// Next returns the batch's next request, or nil when the batch is
// complete: it holds the batch limit; or nothing is queued and it holds as
// many as the previous batch (or lingering is off); or nothing is queued
// and the delay, counted from the first time the queue ran dry, has
// passed; or the store closes. After nil it stays nil.
func (l *Linger[Row]) Next() *Request[Row] {
	for l.n < l.q.maxBatch {
		select {
		case r := <-l.q.ch:
			l.n++
			return r
		default:
		}
		if l.q.maxDelay <= 0 || l.n >= l.want {
			break
		}
		if l.timer == nil {
			l.timer = time.NewTimer(l.q.maxDelay)
		}
		select {
		case r := <-l.q.ch:
			l.n++
			return r
		case <-l.timer.C:
		case <-l.q.quit:
		}
		l.want = 0 // the delay is over: only what is queued now
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	l.n = l.q.maxBatch
	return nil
}

// Take returns the batch's next request that the writer now owns,
// skipping those whose caller gave up, or nil when the batch is complete
// (see Next). A nil Linger hands over nothing.
func (l *Linger[Row]) Take() *Request[Row] {
	for l != nil {
		r := l.Next()
		if r == nil || r.TryTake() {
			return r
		}
	}
	return nil
}

// Answerer answers committed batches on a goroutine of its own, in commit
// order, so that a writer can start its next batch while the callers of
// the last one are woken.
type Answerer[Row any] struct {
	ch   chan []answer[Row]
	done chan struct{}
}

type answer[Row any] struct {
	r   *Request[Row]
	res Result
}

// NewAnswerer starts an Answerer; Close stops it.
func NewAnswerer[Row any]() *Answerer[Row] {
	a := &Answerer[Row]{ch: make(chan []answer[Row], 4), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for b := range a.ch {
			for _, x := range b {
				x.r.Answer(x.res)
			}
		}
	}()
	return a
}

// Answer queues results[i] as the answer of batch[i]. The caller may reuse
// both slices once it returns.
func (a *Answerer[Row]) Answer(batch []*Request[Row], results []Result) {
	b := make([]answer[Row], len(batch))
	for i, r := range batch {
		b[i] = answer[Row]{r: r, res: results[i]}
	}
	a.ch <- b
}

// Close answers everything queued, then stops. Call it once, after the
// last Answer.
func (a *Answerer[Row]) Close() {
	close(a.ch)
	<-a.done
}

// Drain fails every request still queued with domain.ErrClosed.
func (q *Queue[Row]) Drain() {
	for {
		select {
		case r := <-q.ch:
			if r.state.CompareAndSwap(pending, cancelled) {
				r.Answer(Result{Err: fmt.Errorf("append %s: %w", r.Req.Stream, domain.ErrClosed)})
			}
		default:
			return
		}
	}
}
