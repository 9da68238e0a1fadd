package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// reqInfo travels with a request: what the log line and the metrics need.
type reqInfo struct {
	id        string
	principal principal
	route     string
	err       error
	// recorded, when set, is the status the metrics and the access log
	// record instead of the one sent: an export cut after its 200 went out.
	recorded int
}

type infoKey struct{}

func infoFrom(ctx context.Context) *reqInfo {
	info, _ := ctx.Value(infoKey{}).(*reqInfo)
	return info
}

func requestID(ctx context.Context) string {
	if info := infoFrom(ctx); info != nil {
		return info.id
	}
	return ""
}

func principalFrom(ctx context.Context) principal {
	if info := infoFrom(ctx); info != nil {
		return info.principal
	}
	return principal{}
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)

// outer wraps the mux with what every request gets: a request id, panic
// recovery, problem answers for unknown routes and wrong methods,
// CORS when configured, authentication of /v1, the shutdown gate, metrics
// and the log line.
func (s *Server) outer(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		info := &reqInfo{id: r.Header.Get("X-Request-ID"), route: "unmatched"}
		if !requestIDPattern.MatchString(info.id) {
			info.id = uuid.Must(uuid.NewV7()).String()
		}
		r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
		sw := &statusWriter{ResponseWriter: w, head: r.Method == http.MethodHead}
		sw.Header().Set("X-Request-ID", info.id)
		// Problems echo input (paths, ids, headers): a browser must take
		// every answer as its Content-Type says, never sniff it for HTML.
		sw.Header().Set("X-Content-Type-Options", "nosniff")
		defer s.finish(sw, r, info, start)
		defer s.recover(sw, r)
		s.dispatch(mux, sw, r, info)
	})
}

func (s *Server) dispatch(mux *http.ServeMux, w *statusWriter, r *http.Request, info *reqInfo) {
	if s.cors != nil {
		// An actual request gets its CORS headers before any answer, the
		// refusals below included (a foreign Host, a shutdown, a body on a
		// GET, an unclean path), so a script on a listed origin reads the
		// problem instead of a bare network error. A page that rebinds its
		// own name is not a listed origin and gets none.
		s.cors.HandlerFunc(w, corsView(r))
	}
	// Without tokens a Host not addressed to this machine is a page that
	// rebound its name (same-origin: it reads every header), so its 403
	// says nothing of the log, neither its position nor its id.
	foreign := !s.auth.enabled && !localHost(r.Host)
	opening, isOpening := s.deps.Opening.pending()
	if !foreign {
		if !isOpening {
			w.Header().Set("Ledger-Position", strconv.FormatInt(s.deps.Read.Applied(), 10))
		}
		if s.logSet.Load() {
			w.Header().Set("Ledger-Log", s.logID)
		}
	}
	if s.cors != nil && isPreflight(r) {
		// A preflight carries no credentials and is answered (above, by
		// rs/cors) for every path and Host.
		info.route = "OPTIONS preflight"
		return
	}
	if foreign {
		s.fail(w, r, errForbidden(fmt.Sprintf("without tokens this server answers only requests addressed to this machine "+
			"(Host localhost or a loopback address), not %q: configure tokens to serve other names", clip(r.Host))))
		return
	}
	if s.closing.Load() {
		w.Header().Set("Connection", "close")
		s.fail(w, r, errShuttingDown())
		return
	}
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.ContentLength != 0 {
		// The streaming answers (exports, the event stream) lift the read
		// deadline; a body trickled to them would hold the request open
		// for ever. No GET here reads a body.
		w.Header().Set("Connection", "close")
		s.fail(w, r, paramErrors{{Name: "body", Reason: "a " + r.Method + " request takes no body"}})
		return
	}
	if !canonical(r.URL.Path) {
		s.fail(w, r, paramErrors{{Name: "path", Reason: "must be a clean absolute path (no //, /./ or /../)"}})
		return
	}
	_, pattern := mux.Handler(r)
	if pattern == "" {
		s.unrouted(mux, w, r)
		return
	}
	info.route = pattern
	// Before authenticating: a node past its bounds spends nothing more.
	release, err := s.admit(pattern)
	if err != nil {
		s.quietly(w, r, err) // counted in ledger_http_overloaded_total, not logged one by one
		return
	}
	defer release()
	if strings.HasPrefix(r.URL.Path, "/v1/") {
		p, err := s.auth.authenticate(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		info.principal = p
		if err := s.sameLog(r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	if isOpening && !answersWhileOpening[pattern] {
		s.quietly(w, r, errStarting(opening))
		return
	}
	mux.ServeHTTP(w, r)
}

// localHost reports whether a request's Host names this machine: a
// loopback address, localhost, or a name under .localhost (browsers
// resolve those themselves, never through DNS). In the open mode nothing
// else may be served: a web page the developer visits can make its own
// name resolve to 127.0.0.1 (DNS rebinding) and so become same-origin
// with the server, but its requests still carry that name as Host. An
// empty Host (HTTP/1.0) is not a browser's.
func localHost(hostport string) bool {
	if hostport == "" {
		return true
	}
	// The usual forms first, without parsing: every request checks this.
	for _, local := range []string{"127.0.0.1:", "localhost:", "[::1]:"} {
		if strings.HasPrefix(hostport, local) && digits(hostport[len(local):]) {
			return true
		}
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	return IsLoopback(host) || strings.HasSuffix(host, ".localhost")
}

// digits reports whether s is one or more ASCII digits.
func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// canonical reports whether the mux would serve p as it is rather than
// redirect to its cleaned form.
func canonical(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c == p
}

// unrouted lets the mux decide between 404 and 405 (and the Allow list),
// then answers with a problem instead of its plain text.
func (s *Server) unrouted(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	rec := &discardWriter{header: http.Header{}}
	mux.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	if rec.status == http.StatusMethodNotAllowed {
		writeProblem(w, newProblem(405, "method-not-allowed", fmt.Sprintf("%s is not allowed here; allowed: %s", r.Method, rec.header.Get("Allow")), 0))
		return
	}
	writeProblem(w, newProblem(404, "not-found", "no such route: "+clip(r.URL.EscapedPath()), 0))
}

func (s *Server) recover(w *statusWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.ErrorContext(r.Context(), "panic", "request_id", requestID(r.Context()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if !w.wrote {
		writeProblem(w, newProblem(500, "internal", "internal error; it has been logged", 0))
	}
}

func (s *Server) finish(w *statusWriter, r *http.Request, info *reqInfo, start time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	if info.recorded != 0 {
		status = info.recorded
	}
	d := time.Since(start)
	s.metrics.observeRequest(info.route, status, d)
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return // the access log is off (--log-level warn or error): build no line
	}
	attrs := []slog.Attr{
		slog.String("request_id", info.id), slog.String("method", r.Method),
		slog.String("route", info.route), slog.String("path", clip(r.URL.Path)),
		slog.Int("status", status), slog.Int64("bytes", w.bytes),
		slog.Duration("duration", d), slog.String("remote", r.RemoteAddr),
	}
	if info.principal.name != "" {
		attrs = append(attrs, slog.String("principal", info.principal.name))
	}
	if info.err != nil && status != 500 {
		attrs = append(attrs, slog.String("detail", info.err.Error()))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

// statusWriter records the status and size of a response. Unwrap lets
// http.ResponseController reach the connection (deadlines, flushing).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
	head   bool // a HEAD request's
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	if !w.head {
		w.bytes += int64(n) // a HEAD answer sends no body, whatever is written
	}
	return n, err
}

func (w *statusWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter captures the mux's own 404/405 answer.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }
func (d *discardWriter) WriteHeader(code int) {
	if d.status == 0 {
		d.status = code
	}
}
func (d *discardWriter) Write(b []byte) (int, error) { return io.Discard.Write(b) }

// clip keeps echoed input bounded.
func clip(s string) string {
	const limit = 200
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
