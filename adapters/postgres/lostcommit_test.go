package postgres_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
)

// TestLostCommitAnswerSaysTheWriteMayHaveCommitted: a connection lost
// after COMMIT was sent, before its answer (seen in a chaos run: a proxy
// cut every connection of a node under load, and a write answered 503
// "the event store cannot accept writes right now: database connection
// failed" was in the log), said the store cannot take writes, as if
// nothing had been written. The error now says the write may have
// committed and how to find out: retry with the same Idempotency-Key.
func TestLostCommitAnswerSaysTheWriteMayHaveCommitted(t *testing.T) {
	schema := pgtest.Schema(t)
	direct := openSchema(t, schema, postgres.Config{})
	p := startCommitCutter(t, pgtest.URL(t))
	s, err := postgres.Open(t.Context(), postgres.Config{URL: p.url, Schema: schema, MaxConns: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p.armed.Store(true)
	_, err = s.Append(t.Context(), like(t, "lost", "article/a1"))
	checkUnavailable(t, "append whose COMMIT answer was lost", err)
	if head, herr := direct.LastPosition(t.Context()); herr != nil || head != 1 {
		t.Fatalf("head %d, %v: want 1, the write committed", head, herr)
	}
	var r interface{ Reason() string }
	if !errors.As(err, &r) || !strings.Contains(r.Reason(), "may have committed") {
		t.Errorf("%v: want a reason saying the write may have committed", err)
	}
}

// commitCutter is a TCP proxy to the test server that, once armed, passes
// the first COMMIT on (the Bind of a statement parsed from that text)
// and then cuts its client off without its answer.
type commitCutter struct {
	url   string
	armed atomic.Bool
}

func startCommitCutter(t *testing.T, base string) *commitCutter {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	target := u.Host
	u.Host = ln.Addr().String()
	q := u.Query()
	q.Set("sslmode", "disable")
	u.RawQuery = q.Encode()
	p := &commitCutter{url: u.String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target)
		}
	}()
	return p
}

func (p *commitCutter) serve(client net.Conn, target string) {
	defer client.Close()
	server, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer server.Close()
	var cut atomic.Bool
	go func() {
		buf := make([]byte, 64*1024)
		for {
			n, err := server.Read(buf)
			if cut.Load() {
				client.Close() // the answer to COMMIT is read, and dropped
				return
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	in := bufio.NewReader(client)
	msg, err := readMessage(in, false) // the startup message
	commit := map[string]bool{}        // statements whose text is COMMIT
	for ; err == nil; msg, err = readMessage(in, true) {
		switch msg[0] {
		case 'P': // Parse: name, text
			if f := bytes.Split(msg[5:], []byte{0}); len(f) > 1 && string(f[1]) == "COMMIT" {
				commit[string(f[0])] = true
			}
		case 'B': // Bind: portal, statement
			if f := bytes.Split(msg[5:], []byte{0}); len(f) > 1 && commit[string(f[1])] && p.armed.CompareAndSwap(true, false) {
				cut.Store(true)
			}
		}
		if _, err := server.Write(msg); err != nil {
			return
		}
	}
}

// readMessage reads one message of the frontend protocol: a type byte
// (none for the startup message) and a length that counts itself.
func readMessage(r *bufio.Reader, typed bool) ([]byte, error) {
	head := 4
	if typed {
		head = 5
	}
	msg := make([]byte, head)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(msg[head-4:]))
	msg = append(msg, make([]byte, n-4)...)
	_, err := io.ReadFull(r, msg[head:])
	return msg, err
}
