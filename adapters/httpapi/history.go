package httpapi

import (
	"bufio"
	"errors"
	"fmt"
	"iter"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

// History limits from API.md.
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
	p, err := newParams(r, s.cfg.Kinds)
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
	w.Header().Set("Vary", "Accept")
	if r.Method == http.MethodHead {
		// The headers are the answer; reading the log for nothing is not.
		w.Header().Set("Content-Type", media)
		return nil
	}
	if media == mediaJSON {
		return s.historyJSON(w, r, f)
	}
	return s.historyStream(w, r, f, media)
}

// eventFilter parses the history filters. NDJSON has no limit cap and no
// default limit.
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
		t := p.target(typ, id)
		f.TargetType, f.TargetID = t.Type(), t.ID()
	case hasType:
		if err := domain.ValidateTargetType(typ); err != nil {
			p.bad.add("target_type", err)
		}
		f.TargetType = typ
	}
	f.Since, f.Until = p.time("since"), p.time("until")
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		p.bad = append(p.bad, InvalidParam{Name: "until", Reason: "must be after since"})
	}
	return f
}

func (s *Server) historyJSON(w http.ResponseWriter, r *http.Request, f domain.EventFilter) error {
	out := historyResponse{Items: []eventcodec.EventJSON{}, NextAfter: f.After}
	for e, err := range s.deps.Log.ReadEvents(r.Context(), f) {
		if err != nil {
			return fmt.Errorf("read history: %w", err)
		}
		out.Items = append(out.Items, eventcodec.ToJSON(e))
		out.NextAfter = e.Position
	}
	return writeJSON(w, http.StatusOK, out)
}

// historyStream writes NDJSON or CSV as the store reads it. Once the first
// byte is out an error can no longer become a problem response, so the
// connection is aborted: a client never mistakes a cut export for a
// complete one.
func (s *Server) historyStream(w http.ResponseWriter, r *http.Request, f domain.EventFilter, media string) error {
	w.Header().Set("Content-Type", media+"; charset=utf-8")
	st := newStreamer(w, s.cfg.WriteTimeout)
	bw := bufio.NewWriterSize(st, 32<<10)
	var csvw *eventcodec.CSVWriter
	if media == mediaCSV {
		csvw = eventcodec.NewCSVWriter(bw)
	}
	err := writeEvents(s.deps.Log.ReadEvents(r.Context(), f), bw, csvw)
	if err == nil && csvw != nil {
		err = csvw.Flush()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		if !st.started {
			return fmt.Errorf("read history: %w", err)
		}
		s.log.WarnContext(r.Context(), "history export aborted", "request_id", requestID(r.Context()), "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// writeEvents writes the events of seq to bw, as CSV rows when csvw is
// set and NDJSON lines otherwise, flushing every 1000 events.
func writeEvents(seq iter.Seq2[domain.Event, error], bw *bufio.Writer, csvw *eventcodec.CSVWriter) error {
	n := 0
	for e, err := range seq {
		if err != nil {
			return err
		}
		if n++; n%1000 == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if csvw != nil {
			err = csvw.Write(e)
		} else if _, err = bw.Write(eventcodec.MarshalEvent(e)); err == nil {
			err = bw.WriteByte('\n')
		}
		if err != nil {
			return err
		}
	}
	return nil
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
}

// abort makes the current and every later Write fail at once. It is safe
// to call from another goroutine: it is how the live stream ends a write
// blocked on a client that stopped reading.
func (s *streamer) abort() {
	s.aborted.Store(true)
	_ = s.rc.SetWriteDeadline(time.Now())
}

func newStreamer(w http.ResponseWriter, stall time.Duration) *streamer {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	return &streamer{w: w, rc: rc, stall: stall}
}

// Write writes b and flushes it to the client.
func (s *streamer) Write(b []byte) (int, error) {
	s.started = true
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.stall)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return 0, err
	}
	if s.aborted.Load() { // checked after the deadline is set: abort's deadline cannot be lost
		return 0, errStreamAborted
	}
	n, err := s.w.Write(b)
	if err != nil {
		return n, err
	}
	return n, s.rc.Flush()
}
