package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/projections"
)

// backfillBatch is how many stored events a resuming client reads at once.
// Their frames (~450 bytes each) are held until the client has taken them,
// ~30 KB a replaying client, about what a live one holds anyway: with 500,
// and then 256, 3,000 clients replaying at once held 370 MB of frames.
const backfillBatch = 64

// frame is one rendered SSE event.
type frame struct {
	pos  int64
	data []byte
}

// subscriber is one SSE client's bounded buffer. The hub closes ch, with
// lost set, when the buffer is full: the client fell behind.
type subscriber struct {
	ch   chan frame
	lost atomic.Bool
	// kick, once the client is live, ends its connection's blocked write
	// when the hub drops it, so a stalled client is cut off within
	// abortGrace rather than after the write timeout.
	kick atomic.Pointer[func()]
	// targets are the only targets whose events the client takes; nil
	// takes every event.
	targets []domain.Target
}

// hub fans applied events out to the SSE clients without ever blocking
// the publisher. Subscribers that take some targets only are indexed by
// target, so an event costs its target's subscribers and the unfiltered
// ones, not every subscriber. It is safe for concurrent use.
type hub struct {
	mu       sync.Mutex
	all      map[*subscriber]struct{}
	byTarget map[domain.Target]map[*subscriber]struct{}
	// published is the position of the last event published: every
	// subscriber's frames up to it are in its buffer (it is set after
	// them, under mu), so a stream that takes what its buffer holds has
	// everything of its filter up to it.
	published atomic.Int64
	buffer    int
	metrics   *Metrics
	clients   atomic.Int64
}

func newHub(buffer int, m *Metrics) *hub {
	return &hub{all: map[*subscriber]struct{}{}, byTarget: map[domain.Target]map[*subscriber]struct{}{}, buffer: buffer, metrics: m}
}

// subscribe adds a subscriber of targets' events (every event when
// targets is empty).
func (h *hub) subscribe(targets []domain.Target) *subscriber {
	s := &subscriber{ch: make(chan frame, h.buffer), targets: targets}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(targets) == 0 {
		h.all[s] = struct{}{}
		return s
	}
	for _, t := range targets {
		set := h.byTarget[t]
		if set == nil {
			set = map[*subscriber]struct{}{}
			h.byTarget[t] = set
		}
		set[s] = struct{}{}
	}
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	h.remove(s)
	h.mu.Unlock()
}

// remove takes s out of the index; h.mu is held.
func (h *hub) remove(s *subscriber) {
	if len(s.targets) == 0 {
		delete(h.all, s)
		return
	}
	for _, t := range s.targets {
		if set := h.byTarget[t]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(h.byTarget, t)
			}
		}
	}
}

func (h *hub) publish(e domain.Event, counts map[string]int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer h.published.Store(e.Position)
	some := h.byTarget[e.Target]
	if len(h.all) == 0 && len(some) == 0 {
		return
	}
	f := frame{pos: e.Position, data: renderEvent(e, counts)}
	h.send(h.all, f)
	h.send(some, f)
}

// send hands f to every subscriber of subs, dropping those whose buffer is
// full; h.mu is held.
func (h *hub) send(subs map[*subscriber]struct{}, f frame) {
	for s := range subs {
		select {
		case s.ch <- f:
		default:
			s.lost.Store(true)
			close(s.ch)
			h.remove(s)
			if kick := s.kick.Load(); kick != nil {
				(*kick)()
			}
		}
	}
}

// Publish hands the live stream one applied event and its target's counts
// right after it, for every configured kind (as projections.AppliedEvent
// has them), and records its apply lag. The projection pipeline calls
// it in position order; it never blocks: a client whose buffer is full is
// dropped.
func (s *Server) Publish(e domain.Event, counts map[string]int64) {
	s.metrics.observeApplied(e, time.Now())
	s.hub.publish(e, counts)
}

func (s *Server) sseClients() float64 { return float64(s.hub.clients.Load()) }

// renderEvent writes the SSE frame: id, event type, and the event's JSON
// object with "counts" added.
func renderEvent(e domain.Event, counts map[string]int64) []byte {
	ev := eventcodec.MarshalEvent(e)
	c, _ := json.Marshal(counts)
	var b bytes.Buffer
	fmt.Fprintf(&b, "id: %d\nevent: %s\ndata: ", e.Position, e.Type)
	b.Write(ev[:len(ev)-1])
	b.WriteString(`,"counts":`)
	b.Write(c)
	b.WriteString("}\n\n")
	return b.Bytes()
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request) error {
	if err := s.canHistory(r); err != nil {
		return err
	}
	if _, ok := negotiate(r.Header.Values("Accept"), "text/event-stream"); !ok {
		return errNotAcceptable("GET /v1/events/stream produces text/event-stream")
	}
	after, minPos, targets, err := s.streamParams(r)
	if err != nil {
		return err
	}
	// A node whose read model stopped until a restart would answer 200
	// and then never send an event (or end at once, in the backfill's
	// read of the counts): EventSource reconnects after a 200 that ends,
	// for ever, but gives up on a 503.
	if err := s.deps.Read.Stopped(); err != nil {
		return err
	}
	// A resume point is a position like min_position: one beyond what this
	// node has applied waits for it, then 503. Streaming from it at once
	// would announce a position the log may never have had (another log's
	// id, a forged one) and skip every event up to it.
	if _, err := s.beginRead(w, r, max(minPos, after)); err != nil {
		return err
	}
	if after < 0 && r.Method != http.MethodHead {
		// Events committed after this read are still sent: the backfill
		// below reads the log again once subscribed.
		if after, err = s.readHead(r.Context()); err != nil {
			return fmt.Errorf("read log head: %w", err)
		}
	}
	// The stream's own headers, on its 200 only (not on a problem).
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	if r.Method == http.MethodHead {
		return nil
	}
	s.hub.clients.Add(1)
	defer s.hub.clients.Add(-1)
	st := newStreamer(w, s.cfg.WriteTimeout)
	// Shutdown ends the stream at once, in the backfill too: a write
	// blocked on a client that stopped reading would otherwise hold the
	// drain until the write timeout.
	defer s.onStop(st.abort)()
	defer st.finish()
	// The opening frame's id is a resume point from the first byte: a
	// client that reconnects before any event arrived sends it back as
	// Last-Event-ID and misses nothing written in between.
	if _, err := st.Write(resumeFrame(retryField(), after)); err != nil {
		return nil
	}
	sub, last, err := s.backfill(r.Context(), st, after, targets)
	if err != nil {
		s.streamFailed(r.Context(), err)
		return nil
	}
	defer s.hub.unsubscribe(sub)
	s.live(r.Context(), st, sub, last)
	return nil
}

// gather is f and the frames queued behind it, after last, to be written
// with one flush: a client that fell behind (a burst of events, thousands
// of streams sharing the cores) catches up in one system call rather than
// one per event, without copying the frames. to is the last position in
// parts; ok is false when the hub dropped the client meanwhile.
func gather(sub *subscriber, f frame, last int64) (parts [][]byte, to int64, ok bool) {
	for queued := len(sub.ch); ; queued-- {
		if f.pos > last {
			parts, last = append(parts, f.data), f.pos
		}
		if queued == 0 {
			return parts, last, true
		}
		if f, ok = <-sub.ch; !ok {
			return nil, last, false
		}
	}
}

// retryField is the opening frame's reconnection time: 2 to 4 s, drawn
// for each connection, so that the EventSource clients of a node that
// restarts (every stream ends at once) do not all reconnect in the same
// moment.
func retryField() string {
	return "retry: " + strconv.Itoa(retryMinMs+rand.IntN(retryMinMs)) + "\n"
}

// retryMinMs is the least reconnection time the stream asks for.
const retryMinMs = 2000

// resumeFrame is a frame without an event that moves the client's
// Last-Event-ID to pos (EventSource keeps the id of a frame without data).
func resumeFrame(prefix string, pos int64) []byte {
	return []byte(prefix + "id: " + strconv.FormatInt(pos, 10) + "\n\n")
}

// clientError is a failed write to the stream's client: the client left or
// stopped reading, which is no fault of the server.
type clientError struct{ err error }

func (e *clientError) Error() string { return "write to client: " + e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// streamFailed logs why a stream ended early: at debug level when the
// client left, at error level (and counted) when the server failed it.
func (s *Server) streamFailed(ctx context.Context, err error) {
	var ce *clientError
	if errors.As(err, &ce) || ctx.Err() != nil || errors.Is(err, errStopping) {
		s.log.DebugContext(ctx, "stream client left during backfill", "request_id", requestID(ctx), "err", err)
		return
	}
	s.metrics.streamFailures.Inc()
	s.log.ErrorContext(ctx, "event stream failed", "request_id", requestID(ctx), "err", err)
}

// streamParams reads after (or Last-Event-ID, which a reconnecting
// browser sends and which wins), min_position and the targets the stream
// is filtered to (none: every event). Without after or Last-Event-ID,
// after is -1: the stream starts at the log head, live only.
func (s *Server) streamParams(r *http.Request) (after, minPos int64, targets []domain.Target, err error) {
	p, err := s.newParams(r)
	if err != nil {
		return 0, 0, nil, err
	}
	after = p.int("after", -1, 0, math.MaxInt64)
	targets = p.streamTargets()
	for _, f := range historyFilters {
		if _, ok := p.query[f]; ok {
			p.bad = append(p.bad, InvalidParam{Name: f, Reason: fmt.Sprintf("the event stream filters by target only, as t=type/id (repeated up to %d times); "+
				"filter the rest as events arrive, or read GET /v1/events", maxStreamTargets)})
		}
	}
	// An empty Last-Event-ID is no resume point: EventSource sends none
	// before its first id, and a proxy or polyfill may send it empty.
	if vs := r.Header.Values("Last-Event-ID"); len(vs) > 0 && (len(vs) > 1 || strings.TrimSpace(vs[0]) != "") {
		n, err := parseDecimal(strings.TrimSpace(vs[0]))
		if err != nil || len(vs) > 1 {
			p.bad = append(p.bad, InvalidParam{Name: "Last-Event-ID", Reason: headerReason(vs, "an event position")})
		}
		after = n
	}
	minPos = p.minPosition(r)
	return after, minPos, targets, p.err()
}

// maxStreamTargets is how many targets one stream may be filtered to:
// its replay reads the log for each of them.
const maxStreamTargets = 50

// streamTargets parses the stream's repeated t=type/id: none is every
// event; more than maxStreamTargets, a malformed one or one given twice
// is 400 naming it.
func (p *params) streamTargets() []domain.Target {
	raw := p.query["t"]
	if len(raw) > maxStreamTargets {
		p.bad = append(p.bad, InvalidParam{Name: "t", Reason: fmt.Sprintf("%d targets given; a stream takes at most %d (open another stream for the rest)", len(raw), maxStreamTargets)})
		return nil
	}
	return p.targets(raw, true)
}

// historyFilters are GET /v1/events's filters, which the stream refuses
// rather than ignores: a client that took them for the stream's would
// get every event.
var historyFilters = []string{"kind", "user", "target_type", "target_id", "since", "until", "limit"}

// backfill sends the stored events after `after` (of targets, or all),
// then returns a live subscription taken before the last read, so that no
// event falls between the two. When the subscription overflowed during a
// long backfill, it subscribes again and reads on.
func (s *Server) backfill(ctx context.Context, st *streamer, after int64, targets []domain.Target) (*subscriber, int64, error) {
	filters := storedFilters(targets)
	for {
		sub := s.hub.subscribe(targets)
		last, err := s.sendStored(ctx, st, after, filters)
		if err != nil || !sub.lost.Load() {
			if err != nil {
				s.hub.unsubscribe(sub)
			}
			return sub, last, err
		}
		after = last
	}
}

// storedFilters are the reads of the log a replay makes for each batch:
// the whole log, or each target's events through the log's filtered read.
func storedFilters(targets []domain.Target) []domain.EventFilter {
	if len(targets) == 0 {
		return []domain.EventFilter{{}}
	}
	fs := make([]domain.EventFilter, len(targets))
	for i, t := range targets {
		fs[i] = domain.EventFilter{TargetType: t.Type(), TargetID: t.ID()}
	}
	return fs
}

// sendStored sends the stored events after `after` that the read model
// has applied when it begins, in batches, with their targets' counts as
// the read model has them (at or after the event). It stops there: the
// log (shared by a cluster's nodes) may hold events this node has not
// applied, whose counts it does not have yet; the caller's subscription,
// taken before, delivers the later events once they are applied, with the
// exact counts. Each batch goes to the client in one write. It returns
// the position the client has every event of its filter up to; while it
// waits for its turn to read, the client gets a heartbeat with that
// position.
func (s *Server) sendStored(ctx context.Context, st *streamer, after int64, filters []domain.EventFilter) (int64, error) {
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	idle := func() error {
		if _, err := st.Write(resumeFrame(": heartbeat "+strconv.FormatInt(after, 10)+"\n", after)); err != nil {
			return &clientError{err}
		}
		return nil
	}
	rp := newReplay(after, s.deps.Read.Applied(), filters)
	for {
		out, full, err := s.renderStored(ctx, rp, tick.C, idle)
		if err != nil || len(out) == 0 {
			return after, err
		}
		if _, err := st.Write(out); err != nil {
			return after, &clientError{err}
		}
		after = rp.to
		if !full {
			return after, nil
		}
	}
}

// renderStored takes the replay's next batch and renders its frames,
// ending with a resume frame at the position the batch has every event of
// the filters up to when its last event is below it; full is whether
// more may follow. It waits for one of the replayReaders, so that a
// reconnect storm (every client of a restarted node resuming at once)
// holds a few batches of events in memory, not one per client, and
// leaves the log's read connections to the projections and the writes;
// each beat while it waits calls idle. It returns nothing when the
// replay is done.
func (s *Server) renderStored(ctx context.Context, rp *replay, beat <-chan time.Time, idle func() error) (out []byte, full bool, err error) {
	if rp.to >= rp.applied {
		return nil, false, nil
	}
	if err := s.replays.enter(ctx, s.stop, beat, idle); err != nil {
		return nil, false, err
	}
	defer s.replays.leave()
	from := rp.to
	batch, err := rp.next(ctx, s.deps.Log)
	if err != nil {
		return nil, false, err
	}
	counts, err := s.countsFor(ctx, batch)
	if err != nil {
		return nil, false, err
	}
	for _, e := range batch {
		out = append(out, renderEvent(e, counts[e.Target])...)
	}
	if n := len(batch); rp.to > from && (n == 0 || batch[n-1].Position < rp.to) {
		out = append(out, resumeFrame("", rp.to)...)
	}
	return out, rp.to < rp.applied, nil
}

// replay is a replay's reads of the log up to applied, what the read
// model had applied when it began: for each filter, the events read and
// not yet sent, and the position its events are known up to. A filter is
// read again only once its batches sent what was read of it, and not at
// all once it is known up to applied: a stream of 50 targets of which
// one has many events reads that one for each batch, not all 50 (which
// cost 850 reads, not 66, for 1,000 events of one target and one of each
// of 49 others). It is not safe for concurrent use.
type replay struct {
	to      int64 // the batches taken hold every event of the filters up to to
	applied int64
	cursors []cursor
}

// cursor is one filter's reads: every event of it after the replay's to
// and up to known is in read, in position order.
type cursor struct {
	filter domain.EventFilter
	read   []domain.Event
	known  int64
}

// maxHeld is how many events read a replay holds between its batches
// (50 targets' reads of backfillBatch would hold 3,200, ~1 MB); the
// events beyond are dropped, and their filters read again from there.
const maxHeld = 2 * backfillBatch

func newReplay(after, applied int64, filters []domain.EventFilter) *replay {
	rp := &replay{to: after, applied: applied, cursors: make([]cursor, len(filters))}
	for i, f := range filters {
		rp.cursors[i] = cursor{filter: f, known: after}
	}
	return rp
}

// next reads what the filters need and returns the replay's next batch:
// the first backfillBatch events read, in position order, up to the
// position (rp.to, moved on) that they hold every event of the filters
// up to.
func (rp *replay) next(ctx context.Context, log Log) ([]domain.Event, error) {
	if err := rp.fill(ctx, log); err != nil {
		return nil, err
	}
	rp.trim()
	to := rp.applied
	for _, c := range rp.cursors {
		to = min(to, c.known)
	}
	var batch []domain.Event
	for _, c := range rp.cursors {
		batch = append(batch, c.read[:upTo(c.read, to)]...)
	}
	if len(rp.cursors) > 1 {
		slices.SortFunc(batch, func(a, b domain.Event) int { return cmp.Compare(a.Position, b.Position) })
	}
	if len(batch) > backfillBatch {
		batch = batch[:backfillBatch]
		to = batch[backfillBatch-1].Position
	}
	for i := range rp.cursors {
		c := &rp.cursors[i]
		c.read = c.read[upTo(c.read, to):]
	}
	rp.to = to
	return batch, nil
}

// fill reads the next backfillBatch events of each filter whose events
// read were all sent and which is not known up to applied. A read that is
// not full has every event of its filter up to applied, which the log
// held when the read began.
func (rp *replay) fill(ctx context.Context, log Log) error {
	for i := range rp.cursors {
		c := &rp.cursors[i]
		if len(c.read) > 0 || c.known >= rp.applied {
			continue
		}
		f := c.filter
		f.After, f.Limit = c.known, backfillBatch
		events, err := domain.AppendEvents(nil, log.ReadEvents(ctx, f))
		if err != nil {
			return fmt.Errorf("read stored events after %d: %w", c.known, err)
		}
		c.known = rp.applied
		if n := len(events); n == backfillBatch {
			c.known = min(c.known, events[n-1].Position)
		}
		c.read = events[:upTo(events, c.known)]
	}
	return nil
}

// trim drops the events read beyond the replay's first maxHeld, in
// position order; their filters are known up to the last one kept.
func (rp *replay) trim() {
	var held []int64
	for _, c := range rp.cursors {
		for _, e := range c.read {
			held = append(held, e.Position)
		}
	}
	if len(held) <= maxHeld {
		return
	}
	slices.Sort(held)
	cut := held[maxHeld-1]
	for i := range rp.cursors {
		c := &rp.cursors[i]
		if c.known > cut {
			c.read, c.known = slices.Clone(c.read[:upTo(c.read, cut)]), cut
		}
	}
}

// upTo is how many of events, in position order, are at or below pos.
func upTo(events []domain.Event, pos int64) int {
	return sort.Search(len(events), func(i int) bool { return events[i].Position > pos })
}

// countsFor reads the counts of the batch's targets, which the read model
// has applied, in chunks of projections.MaxTargets (one lookup's most):
// a replay's batch of backfillBatch touches fewer, any batch may.
func (s *Server) countsFor(ctx context.Context, batch []domain.Event) (map[domain.Target]map[string]int64, error) {
	seen := map[domain.Target]bool{}
	var ts []domain.Target
	for _, e := range batch {
		if !seen[e.Target] {
			seen[e.Target] = true
			ts = append(ts, e.Target)
		}
	}
	out := make(map[domain.Target]map[string]int64, len(ts))
	for chunk := range slices.Chunk(ts, projections.MaxTargets) {
		views, err := s.deps.Read.Targets(ctx, chunk, nil)
		if err != nil {
			return nil, fmt.Errorf("read counts of %d targets: %w", len(chunk), err)
		}
		for _, v := range views {
			out[v.Target] = v.Counts
		}
	}
	return out, nil
}

// live forwards published events until the client leaves, falls behind,
// the server shuts down, or the read model stops until a restart (seen at
// the next heartbeat: the client reconnects and is answered 503); it
// sends a heartbeat comment when idle.
func (s *Server) live(ctx context.Context, st *streamer, sub *subscriber, last int64) {
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	kick := st.abort
	sub.kick.Store(&kick)
	defer func() {
		if sub.lost.Load() {
			s.metrics.dropped.Inc()
			s.log.InfoContext(ctx, "dropped a slow stream client", "request_id", requestID(ctx))
		}
	}()
	for {
		select {
		case f, ok := <-sub.ch:
			if !ok {
				return
			}
			parts, to, ok := gather(sub, f, last)
			if !ok {
				return
			}
			if len(parts) == 0 {
				continue
			}
			if _, err := st.writeParts(parts...); err != nil {
				return
			}
			last = to
		case <-tick.C:
			if err := s.deps.Read.Stopped(); err != nil {
				s.log.InfoContext(ctx, "ended a stream: the read model stopped until a restart", "request_id", requestID(ctx), "err", err)
				return
			}
			var ok bool
			if last, ok = s.heartbeat(st, sub, last); !ok {
				return
			}
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		}
	}
}

// heartbeat writes the frames queued for sub, then a heartbeat frame with
// the position the client has every event of its filter up to: the last
// it was sent, or the hub's last published position if that is later.
// Every frame of sub up to that position is queued when it is read, so a
// filtered client's resume point moves on with the log while no event of
// its targets comes, and a resume from it misses nothing. It returns the
// new position, and false when the client is gone or was dropped.
func (s *Server) heartbeat(st *streamer, sub *subscriber, last int64) (int64, bool) {
	published := s.hub.published.Load()
	if sub.lost.Load() {
		return last, false // its frames up to published are not all queued
	}
	var parts [][]byte
	to := last
	select {
	case f, ok := <-sub.ch:
		if !ok {
			return last, false
		}
		if parts, to, ok = gather(sub, f, last); !ok {
			return last, false
		}
	default:
	}
	to = max(to, published)
	parts = append(parts, resumeFrame(": heartbeat "+strconv.FormatInt(to, 10)+"\n", to))
	if _, err := st.writeParts(parts...); err != nil {
		return last, false
	}
	return to, true
}

// replayReaders is how many streams read the log for their replay at
// once.
const replayReaders = 2

// gate admits a bounded number of holders at once; it counts those
// waiting. It is safe for concurrent use.
type gate struct {
	slots   chan struct{}
	waiting atomic.Int64
}

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// errStopping ends a stream waiting for its turn when shutdown starts.
var errStopping = errors.New("the server is shutting down")

// enter waits for a slot, calling idle at each beat while it waits (a
// stream's heartbeat: a proxy would otherwise cut a stream that waits
// longer than its idle timeout); it returns idle's error, ctx's error when
// ctx ends first and errStopping when stop closes first.
func (g *gate) enter(ctx context.Context, stop <-chan struct{}, beat <-chan time.Time, idle func() error) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	for {
		select {
		case g.slots <- struct{}{}:
			return nil
		case <-beat:
			if err := idle(); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-stop:
			return errStopping
		}
	}
}

// leave frees the slot enter took.
func (g *gate) leave() { <-g.slots }
