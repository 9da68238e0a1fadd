package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// requestTimeout bounds one request when ctx has no deadline.
const requestTimeout = 30 * time.Second

// conn is one client's keep-alive connection, driven on the client's own
// goroutine: the request line is written straight to the socket and the
// answer parsed with http.ReadResponse. http.Transport hands every request
// to a writer and a reader goroutine per connection; the load generator
// shares the cores with the server it measures, and that hand-off cost it
// about as much CPU per request as this whole path does.
type conn struct {
	host string // host:port of the server
	nc   net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func newConn(host string) *conn { return &conn{host: host} }

// do sends one bodiless request and returns the answer's status. Any error
// closes the connection; the next request dials again. An error says
// whether it came on a connection dialled for the request (transportError).
func (c *conn) do(ctx context.Context, method, path string) (int, error) {
	fresh := c.nc == nil
	if fresh {
		if err := c.dial(ctx); err != nil {
			return 0, transportError{err: err, dial: true}
		}
	}
	status, keep, err := c.roundTrip(ctx, method, path)
	if err != nil || !keep {
		c.close()
	}
	if err != nil {
		return status, transportError{err: err, fresh: fresh}
	}
	return status, nil
}

// transportError is a request that got no answer: its dial failed, or
// the connection (fresh: dialled for it) failed before the answer came.
type transportError struct {
	err         error
	dial, fresh bool
}

func (e transportError) Error() string { return e.err.Error() }
func (e transportError) Unwrap() error { return e.err }

// kind names the error for the report: where it came (dial, fresh or
// reused connection) and what it was (EOF, reset, timeout, or its text).
func (e transportError) kind() string {
	where := "reused connection"
	switch {
	case e.dial:
		where = "dial"
	case e.fresh:
		where = "fresh connection"
	}
	var what string
	var ne net.Error
	switch {
	case errors.Is(e.err, io.EOF), errors.Is(e.err, io.ErrUnexpectedEOF):
		what = "EOF"
	case errors.Is(e.err, syscall.ECONNRESET):
		what = "reset"
	case errors.Is(e.err, syscall.ECONNREFUSED):
		what = "refused"
	case errors.As(e.err, &ne) && ne.Timeout():
		what = "timeout"
	default:
		what = e.err.Error()
	}
	return "transport error: " + what + " (" + where + ")"
}

func (c *conn) dial(ctx context.Context) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.host)
	if err != nil {
		return err
	}
	c.nc, c.r, c.w = nc, bufio.NewReader(nc), bufio.NewWriter(nc)
	return nil
}

func (c *conn) roundTrip(ctx context.Context, method, path string) (status int, keep bool, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(requestTimeout)
	}
	if err := c.nc.SetDeadline(deadline); err != nil {
		return 0, false, err
	}
	c.w.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + c.host + "\r\n")
	if method == http.MethodPut || method == http.MethodPost {
		c.w.WriteString("Content-Length: 0\r\n")
	}
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return 0, false, err
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, !resp.Close, err
}

func (c *conn) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}
