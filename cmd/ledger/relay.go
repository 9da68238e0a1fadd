package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	relaynats "github.com/interactionledger/ledger/adapters/nats"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/dburl"
)

func runRelay(ctx context.Context, e env, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(e.stdout, "Usage: ledger relay nats --db DB --nats URL [flags]   (relay nats --help for its flags)")
		if len(args) == 0 {
			return usageErr("relay needs a broker: nats")
		}
		return nil
	}
	if args[0] != "nats" {
		return usageErr("unknown relay %q: want nats", args[0])
	}
	return relayNATS(ctx, e, args[1:])
}

// relayFlags are the flags of relay nats.
type relayFlags struct {
	db, metricsListen, logFormat, logLevel string
	cfg                                    relaynats.Config
}

// defaultNATS is the NATS server the relay and bench relay use without
// --nats: a local one.
const defaultNATS = "nats://127.0.0.1:4222"

func parseRelayFlags(e env, args []string) (relayFlags, error) {
	fs := newFlagSet(e, "relay nats", "--db DB --nats URL [flags]")
	var f relayFlags
	fs.StringVar(&f.db, "db", DefaultDB, "the event log to relay: a SQLite file or a postgres:// URL (must exist; opened read-only)")
	fs.StringVar(&f.cfg.URL, "nats", defaultNATS, "NATS server URL(s), comma-separated")
	fs.StringVar(&f.cfg.Stream, "stream", relaynats.DefaultStream, "JetStream stream, created if absent (file storage, subjects <subject-prefix>.>)")
	fs.StringVar(&f.cfg.SubjectPrefix, "subject-prefix", relaynats.DefaultSubjectPrefix, "events go to <subject-prefix>.<kind>.<target_type>")
	fs.IntVar(&f.cfg.Replicas, "stream-replicas", 1, "replicas of the stream and the lock bucket when created (clustered NATS)")
	fs.StringVar(&f.cfg.LockBucket, "lock-bucket", relaynats.DefaultLockBucket, "key-value bucket of the single-relay lock (key: the stream's name)")
	fs.DurationVar(&f.cfg.LockTTL, "lock-ttl", relaynats.DefaultLockTTL, "a dead relay's lock expires after this; a standby then takes over")
	fs.DurationVar(&f.cfg.PollInterval, "poll-interval", relaynats.DefaultPollInterval, "how often the log is read for events written by other processes")
	fs.DurationVar(&f.cfg.BackoffMax, "max-backoff", relaynats.DefaultBackoffMax, "longest wait between retries while NATS is unreachable")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics on this address at /metrics (off when empty)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parseFlags(fs, e, args); err != nil {
		return f, err
	}
	if err := checkRelayConfig(f.cfg); err != nil {
		return f, err
	}
	if f.metricsListen != "" {
		if err := checkListen(f.metricsListen); err != nil {
			return f, usageErr("--metrics-listen %q: %v", f.metricsListen, err)
		}
	}
	return f, nil
}

// checkListen checks a host:port to listen on, the port 0..65535.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want 0..65535", port)
	}
	return nil
}

// checkRelayConfig turns the config's validation errors into usage errors
// that name the flag and its value.
func checkRelayConfig(cfg relaynats.Config) error {
	if cfg.BackoffMax < relaynats.DefaultBackoffMin {
		return usageErr("--max-backoff %s: must be >= %s", cfg.BackoffMax, relaynats.DefaultBackoffMin)
	}
	if cfg.PollInterval < relaynats.MinPollInterval {
		return usageErr("--poll-interval %s: must be >= %s (shorter only spins on an idle log)", cfg.PollInterval, relaynats.MinPollInterval)
	}
	// Config reads zero values as "the default"; on the command line they
	// are mistakes.
	if cfg.Replicas < 1 {
		return usageErr("--stream-replicas \"%d\": must be 1..5 (JetStream's limit)", cfg.Replicas)
	}
	if cfg.LockTTL <= 0 {
		return usageErr("--lock-ttl \"%s\": must be >= 1s", cfg.LockTTL)
	}
	for flag, v := range map[string]string{"nats": cfg.URL, "stream": cfg.Stream, "subject-prefix": cfg.SubjectPrefix, "lock-bucket": cfg.LockBucket} {
		if v == "" {
			return usageErr("--%s is empty", flag)
		}
	}
	flags := map[string]struct {
		name  string
		value any
	}{
		"URL": {"nats", relaynats.RedactURL(cfg.URL)}, "Stream": {"stream", cfg.Stream}, "SubjectPrefix": {"subject-prefix", cfg.SubjectPrefix},
		"Replicas": {"stream-replicas", cfg.Replicas}, "LockBucket": {"lock-bucket", cfg.LockBucket},
		"LockTTL": {"lock-ttl", cfg.LockTTL},
	}
	var errs []error
	for _, err := range unjoin(cfg.Validate()) {
		var ve *domain.ValidationError
		if errors.As(err, &ve) {
			if f, ok := flags[ve.Field]; ok {
				errs = append(errs, usageErr("--%s %q: %s", f.name, fmt.Sprint(f.value), ve.Reason))
				continue
			}
		}
		errs = append(errs, usageErr("%v", err))
	}
	return errors.Join(errs...)
}

// unjoin returns the errors joined in err (err itself when it is not a join).
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

func relayNATS(ctx context.Context, e env, args []string) error {
	f, err := parseRelayFlags(e, args)
	if err != nil {
		return helpOK(err)
	}
	log, err := newLogger(e.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, f.db, storeOptions{readOnly: true}, log)
	if err != nil {
		return fmt.Errorf("open the log %s: %w", dburl.Redact(f.db), err)
	}
	defer store.Close()
	f.cfg.Metrics = relaynats.NewMetrics()
	relay, err := relaynats.NewRelay(store, f.cfg, log)
	if err != nil {
		return usageErr("%v", err)
	}
	if f.metricsListen != "" {
		stop, err := serveMetrics(ctx, f.metricsListen, f.cfg.Metrics.Handler(), log)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("relay starting", "db", dburl.Redact(f.db), "nats", relaynats.RedactURL(f.cfg.URL), "stream", f.cfg.Stream, "subject_prefix", f.cfg.SubjectPrefix)
	if err := relay.Run(ctx); err != nil {
		if moved := movedRefusal(err, "--db", f.db); moved != nil { // as serve refuses it
			return fmt.Errorf("%w; relay it from there into stream %s, which goes on after its last message", moved, f.cfg.Stream)
		}
		return err
	}
	log.Info("relay stopped", "position", relay.Relayed())
	return nil
}

// serveMetrics serves h at /metrics on addr until stop is called.
func serveMetrics(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	log.Info("metrics listening", "url", "http://"+l.Addr().String()+"/metrics")
	return func() {
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}, nil
}
