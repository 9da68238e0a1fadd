package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestServeFlagsFromEnv: the CORS and JWT claim flags reach the server's
// config, from the command line or from LEDGER_* variables.
func TestServeFlagsFromEnv(t *testing.T) {
	vars := map[string]string{
		"LEDGER_CORS_ORIGINS":     "https://app.example, http://localhost:5173",
		"LEDGER_CORS_CREDENTIALS": "true",
		"LEDGER_JWT_SECRET":       strings.Repeat("s", 32),
		"LEDGER_JWT_AUDIENCE":     "ledger",
	}
	e := env{getenv: func(k string) string { return vars[k] }}
	fs, f := newServeFlags(e)
	if err := parseFlags(fs, e, []string{"--jwt-issuer", "https://id.example"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.CORS.Origins, []string{"https://app.example", "http://localhost:5173"}) || !cfg.CORS.Credentials {
		t.Errorf("cors %+v", cfg.CORS)
	}
	if cfg.Auth.JWTAudience != "ledger" || cfg.Auth.JWTIssuer != "https://id.example" {
		t.Errorf("jwt audience %q issuer %q", cfg.Auth.JWTAudience, cfg.Auth.JWTIssuer)
	}
}

// TestServeDuplicateTokenLine: a token listed twice in --tokens-file is a
// usage error naming the file and both lines, before anything is opened.
func TestServeDuplicateTokenLine(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	body := "read-token-0123456789 read\n# again\nread-token-0123456789 write\n"
	if err := os.WriteFile(tokens, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "t.db")
	_, _, err := runCLI(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--tokens-file", tokens)
	want := "--tokens-file " + tokens + ": tokens line 3: the token of line 1 is listed twice"
	if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("serve: %v (exit %d), want exit 2 with %q", err, exitCode(err), want)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log: %v, want not created", err)
	}
}

// TestServeBadListenPort: a port out of range or not a port is a usage
// error naming it, before the log is created (it used to exit 1 after
// creating the store and building the views).
func TestServeBadListenPort(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	for _, listen := range []string{"127.0.0.1:99999", ":-1", "127.0.0.1:notaport"} {
		_, _, err := runCLI(t, "serve", "--db", db, "--listen", listen)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), listen) {
			t.Errorf("--listen %s: %v (exit %d), want exit 2 naming it", listen, err, exitCode(err))
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log: %v, want not created", err)
	}
}

// TestServeWriteRateFinite: --write-rate NaN (which turned the limit off)
// and the infinities exit 2 naming the value; -1 names the rate alone.
func TestServeWriteRateFinite(t *testing.T) {
	db := filepath.Join(t.TempDir(), "w.db")
	for _, rate := range []string{"NaN", "+Inf", "-Inf", "-1"} {
		err := runCanceled(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--write-rate", rate)
		msg := fmt.Sprint(err)
		if exitCode(err) != 2 || !strings.Contains(msg, "write rate "+rate) || strings.Contains(msg, "burst") {
			t.Errorf("--write-rate %s: %v (exit %d), want exit 2 naming the rate alone", rate, err, exitCode(err))
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log: %v, want not created", err)
	}
}

// TestServeConsistencyTimeoutFitsTheAnswer: a --consistency-timeout that
// leaves no time to answer within the server's write timeout (60 s) exits
// 2 naming both: a read waiting it out got its 503 written after the
// connection's deadline, and its client an empty reply.
func TestServeConsistencyTimeoutFitsTheAnswer(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	err := runCanceled(t, "serve", "--db", db, "--listen", "127.0.0.1:0", "--consistency-timeout", "65s")
	if msg := fmt.Sprint(err); exitCode(err) != 2 || !strings.Contains(msg, "consistency timeout") || !strings.Contains(msg, "write timeout") {
		t.Errorf("--consistency-timeout 65s: %v (exit %d), want exit 2 naming it and the write timeout", err, exitCode(err))
	}
}

// TestServeBounds: the connection, stream and in-flight bounds reach the
// server's config, from flags or LEDGER_* variables; --max-connections'
// default is the open-file limit less fileReserve; a negative bound, or
// --max-streams not below --max-connections, exits 2 naming the values
// before the log is created.
func TestServeBounds(t *testing.T) {
	vars := map[string]string{"LEDGER_MAX_IN_FLIGHT": "64"}
	e := env{getenv: func(k string) string { return vars[k] }}
	fs, f := newServeFlags(e)
	if err := parseFlags(fs, e, []string{"--db", "x.db", "--max-streams", "10"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur > 2*fileReserve && lim.Cur < maxDefaultConnections && cfg.MaxConnections != int(lim.Cur)-fileReserve {
		t.Errorf("max connections %d, want the open-file limit %d less %d", cfg.MaxConnections, lim.Cur, fileReserve)
	}
	if cfg.MaxInFlight != 64 || cfg.MaxStreams != 10 {
		t.Errorf("max in flight %d, max streams %d; want 64 and 10", cfg.MaxInFlight, cfg.MaxStreams)
	}
	db := filepath.Join(t.TempDir(), "b.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-connections", "100", "--max-streams", "100"}, "max streams 100 must be below max connections 100"},
		{[]string{"--max-in-flight", "-1"}, "max in flight -1: must be >= 0"},
		{[]string{"--max-connections", "-5"}, "max connections -5: must be >= 0"},
	} {
		err := runCanceled(t, append([]string{"serve", "--db", db, "--listen", "127.0.0.1:0"}, c.args...)...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), c.want) {
			t.Errorf("%v: %v (exit %d), want exit 2 with %q", c.args, err, exitCode(err), c.want)
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log: %v, want not created", err)
	}
}
