package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// History limits from docs/api.md.
const (
	defaultHistory = 1000
	maxHistory     = 10000
)

// The media types of GET /v1/events.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
	mediaCSV    = "text/csv"
)

type historyResponse struct {
	Items     []eventcodec.EventJSON `json:"items"`
	NextAfter int64                  `json:"next_after"`
}

// canHistory: admin, or read where history is public.
func (s *Server) canHistory(r *http.Request) error {
	p := principalFrom(r.Context())
	if p.open || p.has(ScopeAdmin) || (s.cfg.PublicHistory && p.canRead()) {
		return nil
	}
	return errForbidden("history needs the admin scope")
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	if err := s.canHistory(r); err != nil {
		return err
	}
	media, ok := negotiate(r.Header.Values("Accept"), mediaJSON, mediaNDJSON, mediaCSV)
	if !ok {
		return errNotAcceptable("GET /v1/events produces application/json, application/x-ndjson or text/csv")
	}
	p, err := s.newParams(r)
	if err != nil {
		return err
	}
	f := p.eventFilter(media)
	minPos := p.minPosition(r)
	if err := p.err(); err != nil {
		return err
	}
	if _, err := s.beginRead(w, r, minPos); err != nil {
		return err
	}
	w.Header().Add("Vary", "Accept") // after CORS's "Vary: Origin"
	// HEAD reads the head too: an after beyond it is refused as GET's is.
	head, err := s.historyHead(r, f)
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		// The headers are the answer; reading the events for nothing is
		// not, so HEAD has no Link: whether a next page exists is known
		// only by reading this one.
		w.Header().Set("Content-Type", historyContentType(media))
		return nil
	}
	if media == mediaNDJSON {
		return s.historyStream(w, r, f)
	}
	return s.historyPage(w, r, f, media, head)
}

// historyHead reads the log's head before the events, whose scan then
// covers at least it, and refuses an after beyond it: a poll's position of
// before a restore of an older copy, which would skip the restored log's
// next events up to it.
func (s *Server) historyHead(r *http.Request, f domain.EventFilter) (int64, error) {
	head, err := s.readHead(r.Context())
	if err != nil {
		return 0, fmt.Errorf("read history: %w", err)
	}
	if f.After > head {
		return 0, errBeyondHead(fmt.Sprintf("after %d", f.After), head)
	}
	return head, nil
}

// historyPage answers one page of f's events as JSON or CSV, with a Link
// to the next when more match; head is the log's, read before it.
func (s *Server) historyPage(w http.ResponseWriter, r *http.Request, f domain.EventFilter, media string, head int64) error {
	page, more, err := s.readPage(r, f)
	if err != nil {
		return err
	}
	if more {
		w.Header().Set("Link", nextPageLink(r, page[len(page)-1].Position))
	}
	if media == mediaCSV {
		return s.historyCSV(w, r, page)
	}
	if more {
		head = 0 // the next page starts after this one's last event
	}
	return s.historyJSON(w, f, page, head)
}

// historyContentType is the Content-Type of a history answer in media:
// the text formats name their charset; JSON is UTF-8 by definition.
func historyContentType(media string) string {
	if media == mediaJSON {
		return media
	}
	return media + "; charset=utf-8"
}

// readPage reads the page of events f selects, and one event more to learn
// whether more remain. A page holds at most maxHistory events.
func (s *Server) readPage(r *http.Request, f domain.EventFilter) (page []domain.Event, more bool, err error) {
	probe := f
	probe.Limit = f.Limit + 1
	for e, err := range s.deps.Log.ReadEvents(r.Context(), probe) {
		if err != nil {
			return nil, false, fmt.Errorf("read history: %w", err)
		}
		page = append(page, e)
	}
	if len(page) > f.Limit {
		return page[:f.Limit], true, nil
	}
	return page, false, nil
}

// nextPageLink is the Link header value of the next page: the request's
// own query (filters, limit) with after moved past the page.
func nextPageLink(r *http.Request, after int64) string {
	q := r.URL.Query()
	q.Set("after", strconv.FormatInt(after, 10))
	return "<" + r.URL.Path + "?" + q.Encode() + `>; rel="next"`
}

// eventFilter parses the history filters. NDJSON has no limit cap and no
// default limit; JSON and CSV pages continue with a Link rel="next".
func (p *params) eventFilter(media string) domain.EventFilter {
	var f domain.EventFilter
	f.After = p.int("after", 0, 0, math.MaxInt64)
	if media == mediaNDJSON {
		f.Limit = int(p.int("limit", 0, 1, math.MaxInt32))
	} else {
		f.Limit = p.limit(defaultHistory, maxHistory)
	}
	if s, ok := p.one("kind"); ok {
		f.Kind = p.kind("kind", s)
	}
	if u := p.optUser("user"); u != nil {
		f.User = *u
	}
	typ, hasType := p.one("target_type")
	id, hasID := p.one("target_id")
	switch {
	case hasID && !hasType:
		p.bad = append(p.bad, InvalidParam{Name: "target_id", Reason: "needs target_type"})
	case hasID:
		t := p.targetNamed(typ, id, "target_type", "target_id")
		f.TargetType, f.TargetID = t.Type(), t.ID()
	case hasType:
		if err := domain.ValidateTargetType(typ); err != nil {
			p.bad.add("target_type", err)
		}
		f.TargetType = typ
	}
	var err error
	if f.Since, f.Until, err = domain.TimeBounds(p.time("since"), p.time("until")); err != nil {
		p.bad.add("until", err)
	}
	return f
}

// historyJSON writes a page as JSON. Its next_after is the page's last
// event, or after when it is empty, or head when that is beyond them: the
// head a last page's scan covered, so that a poll with filters moves past
// the events that did not match.
func (s *Server) historyJSON(w http.ResponseWriter, f domain.EventFilter, page []domain.Event, head int64) error {
	out := historyResponse{Items: make([]eventcodec.EventJSON, 0, len(page)), NextAfter: f.After}
	for _, e := range page {
		out.Items = append(out.Items, eventcodec.ToJSON(e))
		out.NextAfter = e.Position
	}
	out.NextAfter = max(out.NextAfter, head)
	return writeJSON(w, http.StatusOK, out)
}

// historyCSV writes a page as CSV.
func (s *Server) historyCSV(w http.ResponseWriter, r *http.Request, page []domain.Event) error {
	w.Header().Set("Content-Type", historyContentType(mediaCSV))
	st := newStreamer(w, s.cfg.WriteTimeout)
	bw := bufio.NewWriterSize(st, 32<<10)
	cw := eventcodec.NewCSVWriter(bw)
	var err error
	for _, e := range page {
		if err = cw.Write(e); err != nil {
			break
		}
	}
	if err == nil {
		err = cw.Flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		err = &clientError{err} // the page is in memory: only writing it can fail
	}
	return s.endExport(r, st, err)
}

// historyStream writes NDJSON as the store reads it.
func (s *Server) historyStream(w http.ResponseWriter, r *http.Request, f domain.EventFilter) error {
	w.Header().Set("Content-Type", historyContentType(mediaNDJSON))
	st := newStreamer(w, s.cfg.WriteTimeout)
	bw := bufio.NewWriterSize(st, 32<<10)
	err := writeNDJSON(pagedEvents(r.Context(), s.deps.Log, f), bw)
	return s.endExport(r, st, err)
}

// exportPage is how many events an NDJSON export reads at once (about
// 1.2 MB; 180,000 events exported 1.06× the time of one read, pages of
// 1,000 1.10×, of 256 1.17×).
const exportPage = 4096

// pagedEvents yields the events f selects, read exportPage at a time: the
// log's read connection is held only while a page is read, never while the
// client takes its time over them. A slow export held one for its whole
// length, and four of them took every connection of a SQLite log's read
// pool, which writes need too (snapshots, idempotency keys): writes, /metrics
// and /readyz hung until the exports ended. The pages follow each other by
// position, so the export is the log's prefix as it stood when the last
// page was read.
func pagedEvents(ctx context.Context, log Log, f domain.EventFilter) iter.Seq2[domain.Event, error] {
	return func(yield func(domain.Event, error) bool) {
		left := f.Limit // 0: every event
		var page []domain.Event
		for {
			pf := f
			pf.Limit = exportPage
			if left > 0 {
				pf.Limit = min(exportPage, left)
			}
			var err error
			if page, err = domain.AppendEvents(page[:0], log.ReadEvents(ctx, pf)); err != nil {
				yield(domain.Event{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
			if len(page) < pf.Limit {
				return
			}
			f.After = page[len(page)-1].Position
			if left > 0 {
				if left -= len(page); left == 0 {
					return
				}
			}
		}
	}
}

// writeNDJSON writes the events of seq to bw as NDJSON lines, flushing
// every 1000 events. A failed write is a *clientError; a failed read is
// seq's error.
func writeNDJSON(seq iter.Seq2[domain.Event, error], bw *bufio.Writer) error {
	n := 0
	for e, err := range seq {
		if err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			if err := bw.Flush(); err != nil {
				return &clientError{err}
			}
		}
		if _, err := bw.Write(eventcodec.MarshalEvent(e)); err != nil {
			return &clientError{err}
		}
		if err := bw.WriteByte('\n'); err != nil {
			return &clientError{err}
		}
	}
	if err := bw.Flush(); err != nil {
		return &clientError{err}
	}
	return nil
}

// endExport turns an export's error into the handler's answer. Once the
// first byte is out an error can no longer become a problem response, so
// the connection is aborted: a client never mistakes a cut export for a
// complete one.
func (s *Server) endExport(r *http.Request, st *streamer, err error) error {
	if err == nil {
		return nil
	}
	if !st.started {
		return fmt.Errorf("read history: %w", err)
	}
	recorded := clientClosed
	var ce *clientError
	if errors.As(err, &ce) || r.Context().Err() != nil {
		s.log.DebugContext(r.Context(), "history export: the client left", "request_id", requestID(r.Context()), "err", err)
	} else {
		recorded = problemFor(err, false).Status
		s.metrics.exportFailures.Inc()
		s.log.ErrorContext(r.Context(), "history export failed after its first byte; connection aborted",
			"request_id", requestID(r.Context()), "err", err)
	}
	if info := infoFrom(r.Context()); info != nil {
		info.recorded = recorded
	}
	panic(http.ErrAbortHandler)
}

// errStreamAborted is the error of a write after streamer.abort.
var errStreamAborted = errors.New("stream aborted: the client fell behind")

// streamer writes a long response: it lifts the server's read deadline
// (whose expiry would cancel the request) and bounds each write instead of
// the whole response, so a client that stops reading is dropped.
type streamer struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	stall   time.Duration
	started bool
	aborted atomic.Bool

	mu       sync.Mutex
	finished bool // the handler is done: abort must not cut its end
	writing  bool // a Write is in progress: only it is cut by abort
}

// abortGrace is how long abort lets a write in progress go on: one to a
// client that reads finishes well within it (cutting it would cut a frame
// and the clean end with it); one blocked on a client that stopped
// reading is cut when it passes.
const abortGrace = time.Second

// abort makes every later Write fail at once and cuts the current one if
// it has not finished within abortGrace. It is safe to call from another
// goroutine: it is how shutdown and the live stream end a write blocked
// on a client that stopped reading. After finish it does nothing, so a
// stream that ended cleanly keeps its clean end.
func (s *streamer) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.aborted.Store(true)
	if s.writing {
		_ = s.rc.SetWriteDeadline(time.Now().Add(min(abortGrace, s.stall)))
	}
}

// finish marks the handler done (see abort).
func (s *streamer) finish() {
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
}

func newStreamer(w http.ResponseWriter, stall time.Duration) *streamer {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	return &streamer{w: w, rc: rc, stall: stall}
}

// Write writes b and flushes it to the client.
func (s *streamer) Write(b []byte) (int, error) { return s.writeParts(b) }

// writeParts writes parts one after the other and flushes them to the
// client once.
func (s *streamer) writeParts(parts ...[]byte) (int, error) {
	s.started = true
	s.mu.Lock()
	s.writing = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.writing = false
		s.mu.Unlock()
	}()
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.stall)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	if s.aborted.Load() { // checked after the deadline is set: abort's deadline cannot be lost
		return 0, errStreamAborted
	}
	n := 0
	for _, b := range parts {
		m, err := s.w.Write(b)
		if n += m; err != nil {
			return n, err
		}
	}
	return n, s.rc.Flush()
}
