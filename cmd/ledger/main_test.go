package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
)

// TestMain lets the test binary act as the ledger binary: with
// LEDGER_CHILD=1 it runs main, so tests (and `ledger bench`, which starts
// servers with os.Executable) can start real child processes without a
// separate build.
func TestMain(m *testing.M) {
	if os.Getenv("LEDGER_CHILD") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a ledger process started by a test.
type child struct {
	cmd    *exec.Cmd
	stderr *testlog.Buffer
	done   chan struct{}
	err    error
}

// startChild runs `ledger args...` as a child process.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{stderr: &testlog.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), "LEDGER_CHILD=1")
	c.cmd.Stderr = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.kill() })
	return c
}

func (c *child) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// wait waits for the child to exit and returns its error.
func (c *child) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	case <-time.After(limit):
		t.Fatalf("child did not exit within %s; stderr:\n%s", limit, c.stderr)
		return nil
	}
}

// startServer starts `ledger serve` on a free port and waits until it is
// ready; it returns the child and its base URL.
func startServerChild(t *testing.T, db string, extra ...string) (*child, string) {
	t.Helper()
	addr := mustFreeAddr(t)
	args := append([]string{"serve", "--listen", addr, "--db", db}, extra...)
	c := startChild(t, args...)
	url := "http://" + addr
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := waitReady(ctx, url+"/readyz", 60*time.Second); err != nil {
		t.Fatalf("server not ready: %v\nstderr:\n%s", err, c.stderr)
	}
	return c, url
}

func mustFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// runCLI runs a subcommand in-process and returns stdout, stderr, error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	// stderr is shared: the servers a bench starts write theirs into it
	// through os/exec's copying goroutine while the bench writes progress.
	var out bytes.Buffer
	var errb testlog.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	return out.String(), errb.String(), err
}

// runCanceled runs the CLI with a context already canceled: a usage error
// is found all the same, and a serve that wrongly starts stops at once
// instead of serving for ever.
func runCanceled(t *testing.T, args ...string) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return run(ctx, args, func(string) string { return "" }, io.Discard, io.Discard)
}

func httpDo(t *testing.T, method, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.Bytes()
}

func mustContain(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}

// readLog opens the log at db (a SQLite file read-only, or a PostgreSQL
// URL), as an analyst would, and calls fn for every event in position
// order.
func readLog(ctx context.Context, db string, fn func(domain.Event) error) error {
	store, err := openStore(ctx, db, storeOptions{readOnly: true}, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	for e, err := range store.ReadEvents(ctx, domain.EventFilter{}) {
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// A command a signal stopped says it was interrupted: its own error reads
// "rebuild all: context canceled", like a fault.
func TestReportInterrupted(t *testing.T) {
	db := filepath.Join(t.TempDir(), "i.db")
	mustFill(t, db, 3)
	err := runCanceled(t, "rebuild", "--db", db)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("rebuild with its context canceled: %v, want context.Canceled", err)
	}
	var b bytes.Buffer
	report(&b, err, true)
	if !strings.HasPrefix(b.String(), "ledger: interrupted") {
		t.Errorf("interrupted: %q", b.String())
	}
	b.Reset()
	report(&b, errors.New("disk full"), true)
	if b.String() != "ledger: disk full\n" {
		t.Errorf("a failure during a signal is not an interruption: %q", b.String())
	}
}
