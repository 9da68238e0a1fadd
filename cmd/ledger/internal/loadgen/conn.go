package loadgen

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
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
// closes the connection; the next request dials again.
func (c *conn) do(ctx context.Context, method, path string) (int, error) {
	if c.nc == nil {
		if err := c.dial(ctx); err != nil {
			return 0, err
		}
	}
	status, keep, err := c.roundTrip(ctx, method, path)
	if err != nil || !keep {
		c.close()
	}
	return status, err
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
