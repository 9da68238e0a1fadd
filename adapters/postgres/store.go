package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/interactionledger/ledger/adapters/groupcommit"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/commitsignal"
	"github.com/interactionledger/ledger/internal/failurelog"
)

var _ domain.EventStore = (*EventStore)(nil)
var _ domain.LatestReader = (*EventStore)(nil)
var _ domain.QueueingStore = (*EventStore)(nil)

// EventStore is domain.EventStore on PostgreSQL. It is safe for concurrent
// use, by goroutines of one process and by any number of processes on the
// same database and schema. Appends are group-committed by one writer
// goroutine per store; reads use the pool and never wait for it.
type EventStore struct {
	// ctx is Open's context without its cancellation: a started
	// transaction always finishes.
	ctx    context.Context
	cfg    Config
	log    *slog.Logger
	pool   *pgxpool.Pool
	schema string
	// channel is the NOTIFY channel of this schema's commits.
	channel string

	queue *groupcommit.Queue[eventRow]
	edge  groupcommit.Edge[eventRow] // Append and Decide
	quit  chan struct{}              // closed by Close
	done  chan struct{}              // closed when the writer has exited

	listenStop context.CancelFunc
	listenDone chan struct{}
	// listening is closed once the listener first listens, has read the
	// head and has fired Committed for its connection.
	listening     chan struct{}
	listeningOnce sync.Once

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	committed *commitsignal.Signal
	// failures logs failed group commits without flooding.
	failures *failurelog.Log
	// logID is the log's identity (LogID), read once by Open.
	logID string
}

// Open connects to cfg.URL, applies the embedded migrations to cfg's
// schema (creating it when missing) and starts the writer and the
// listener; with cfg.ReadOnly it only checks that the schema holds a
// store of this build's version and starts the listener. A nil log discards. It returns an error
// wrapping domain.ErrInvalidInput for a bad Config or URL,
// domain.ErrNotFound when a read-only store's schema holds no store,
// domain.ErrLogMoved when a writable store's log moved to another store
// (ledger import log), and
// domain.ErrUnavailable when the database cannot be reached or migrated
// (or a read-only store's schema is at another version).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*EventStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pcfg, schema, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", translate(ctx, err))
	}
	s := &EventStore{ctx: context.WithoutCancel(ctx), cfg: cfg, log: log, pool: pool, schema: schema,
		channel: "ledger_commits_" + schema, committed: commitsignal.New(), failures: &failurelog.Log{Logger: log, What: "group commit", Level: slog.LevelError}}
	if err := s.prepare(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres schema %s: %w", schema, err)
	}
	if !cfg.ReadOnly {
		s.quit = make(chan struct{})
		s.queue = groupcommit.NewQueue[eventRow](cfg.MaxBatch, cfg.MaxDelay, s.quit)
		s.done = make(chan struct{})
		go s.run()
	}
	s.edge = s.newEdge()
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.listenStop, s.listenDone, s.listening = stop, make(chan struct{}), make(chan struct{})
	go s.listen(lctx)
	return s, nil
}

// prepare migrates a writable store's schema and purges old idempotency
// records, or checks a read-only store's schema version.
func (s *EventStore) prepare(ctx context.Context) error {
	if s.cfg.ReadOnly {
		if err := checkVersion(ctx, s.pool, s.schema); err != nil {
			return err
		}
		return s.readLogID(ctx)
	}
	if err := migrate(ctx, s.pool, s.schema, s.log); err != nil {
		return err
	}
	if err := s.readLogID(ctx); err != nil {
		return err
	}
	if err := s.refuseMoved(ctx); err != nil {
		return err
	}
	return s.purge(ctx)
}

// readLogID reads the log's identity (migration 0002).
func (s *EventStore) readLogID(ctx context.Context) error {
	err := s.pool.QueryRow(ctx, `SELECT id::text FROM `+pgx.Identifier{s.schema, "log_identity"}.Sanitize()).Scan(&s.logID)
	if err != nil {
		return fmt.Errorf("read the log's identity: %w", translate(ctx, err))
	}
	return nil
}

// LogID is the log's identity (domain.Identified): one UUID for the
// schema's log, the same on every node.
func (s *EventStore) LogID() string { return s.logID }

// ErrLogReplaced is the error of a store whose schema now holds another
// log than the one it opened (dropped and made anew under it). It is a
// domain.ErrLogReplaced, so that readers over any store (the relay) stop on it.
var ErrLogReplaced = fmt.Errorf("the schema holds another log than the one this node opened (%w)", domain.ErrLogReplaced)

// sameLog checks that the schema's log is the one the store opened: it is
// ErrLogReplaced, an ErrUnavailable, when not. The node must be restarted
// (on another views file, or after ledger rebuild).
func (s *EventStore) sameLog(log string) error {
	if log == s.logID {
		return nil
	}
	return fmt.Errorf("%w (it opened %s, the schema %s now holds %s): restart the node: %w",
		ErrLogReplaced, s.logID, s.schema, log, domain.ErrUnavailable)
}

// poolConfig parses cfg.URL and fixes what the store relies on: the
// schema in search_path and durable commits.
func poolConfig(cfg Config) (*pgxpool.Config, string, error) {
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, "", fmt.Errorf("postgres URL: not a valid connection string%s: %w", parseReason(err, cfg.URL), domain.ErrInvalidInput)
	}
	schema := cfg.Schema
	params := pcfg.ConnConfig.RuntimeParams
	if schema == "" {
		schema = params["search_path"]
	}
	if schema == "" {
		schema = "public"
	}
	if !schemaName.MatchString(schema) {
		return nil, "", fmt.Errorf("postgres search_path %q must be one lower-case identifier: %w", schema, domain.ErrInvalidInput)
	}
	params["search_path"] = schema
	// An acknowledged append must survive a crash of the server, whatever
	// the database's default is.
	params["synchronous_commit"] = "on"
	if params["application_name"] == "" {
		params["application_name"] = "ledger"
	}
	// A process frozen inside its group commit (stopped, partitioned)
	// holds the head row, and with it every writer of the cluster: the
	// server ends such a session after this long.
	if params["idle_in_transaction_session_timeout"] == "" {
		params["idle_in_transaction_session_timeout"] = idleInTxTimeout
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	switch {
	case cfg.MaxConns > 0:
		pcfg.MaxConns = cfg.MaxConns
	case !strings.Contains(cfg.URL, "pool_max_conns"):
		pcfg.MaxConns = DefaultMaxConns
	}
	return pcfg, schema, nil
}

// parseReason is what pgx found wrong with url (": pool_max_conns too
// small", ": failed to configure TLS (sslmode is invalid)"), without the
// URL its error quotes, or "" when the reason holds a secret of url (the
// URL's redaction is pgx's best effort for a URL that does not parse, and
// a reason may quote a part of it). The refusal said only "not a valid
// connection string", whatever the parameter.
func parseReason(err error, url string) string {
	msg := err.Error()
	i := strings.LastIndex(msg, "`: ")
	if i < 0 {
		return ""
	}
	reason := msg[i+len("`: "):]
	for _, secret := range urlSecrets(url) {
		if strings.Contains(reason, secret) {
			return ""
		}
	}
	return ": " + reason
}

// urlSecrets are the passwords a PostgreSQL URL may hold, as written:
// the user information's (ended by its first or its last "@") and the
// password and sslpassword parameters'.
func urlSecrets(url string) []string {
	var secrets []string
	_, rest, _ := strings.Cut(url, "://")
	for _, at := range []int{strings.Index(rest, "@"), strings.LastIndex(rest, "@")} { // either may end it in a URL that does not parse
		if _, pw, ok := strings.Cut(rest[:max(at, 0)], ":"); ok {
			secrets = append(secrets, pw)
		}
	}
	_, query, _ := strings.Cut(url, "?")
	for _, kv := range strings.Split(query, "&") {
		key, value, _ := strings.Cut(kv, "=")
		if key == "password" || key == "sslpassword" {
			secrets = append(secrets, value)
		}
	}
	return slices.DeleteFunc(secrets, func(s string) bool { return s == "" })
}

// Schema returns the schema holding the store's tables.
func (s *EventStore) Schema() string { return s.schema }

// Close stops the writer after answering every append it has started and
// failing every queued one with domain.ErrClosed, stops the listener and
// closes the pool. It is safe to call more than once.
func (s *EventStore) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		defer s.committed.End() // tailers waiting for a commit wake and find the store closed
		if s.quit != nil {
			close(s.quit)
			<-s.done
		}
		s.listenStop()
		<-s.listenDone
		s.pool.Close()
	})
	return s.closeErr
}

// Committed returns a channel closed at the next commit of any process on
// this schema: at once for this store's own commits, on notification for
// others' (and whenever the listener had to reconnect, since it may have
// missed some); a read-only store learns of every commit the same way.
// After Close it is closed for good.
func (s *EventStore) Committed() <-chan struct{} { return s.committed.Wait() }

func (s *EventStore) notifyCommitted() { s.committed.Notify() }

// usable fails calls after Close with domain.ErrClosed.
func (s *EventStore) usable() error {
	if s.closed.Load() {
		return fmt.Errorf("postgres event store: %w", domain.ErrClosed)
	}
	return nil
}

// Ping checks that the database answers, for health checks. It returns
// domain.ErrUnavailable when it does not and domain.ErrClosed after Close.
func (s *EventStore) Ping(ctx context.Context) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", translate(ctx, err))
	}
	return nil
}

// isNoRows reports whether a QueryRow found nothing.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
