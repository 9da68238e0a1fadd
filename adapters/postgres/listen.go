package postgres

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/interactionledger/ledger/internal/failurelog"

	"github.com/jackc/pgx/v5"
)

// Reconnection backoff of the listener.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// listen keeps one connection LISTENing on the schema's channel until ctx
// ends, and closes Committed on every notification. Whenever it
// (re)connects it closes Committed too, since notifications sent while it
// was away are lost; with no notification for PollInterval it reads the
// head itself, a safety net for anything else that was missed.
func (s *EventStore) listen(ctx context.Context) {
	defer close(s.listenDone)
	// An outage is one run of failed attempts, logged without flooding:
	// each attempt was a warning, 12 a minute for as long as it lasted.
	failures := &failurelog.Log{Logger: s.log, What: "commit listener", Level: slog.LevelWarn}
	wait := listenRetryMin
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, func() { wait = listenRetryMin; failures.Succeeded() })
		if ctx.Err() != nil {
			return
		}
		failures.Failed(err, "reconnecting_after", wait)
		s.notifyCommitted()
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, listenRetryMax)
	}
}

// listenOnce connects, listens and waits for notifications until the
// connection fails or ctx ends. connected is called once LISTEN is in
// place.
func (s *EventStore) listenOnce(ctx context.Context, connected func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return err
	}
	connected()
	// The head read now is what the first poll compares with: a commit
	// whose notification is missed before that poll must still be noticed.
	seen, err := s.pollHead(ctx, conn)
	if err != nil {
		return err
	}
	s.notifyCommitted()
	s.listeningOnce.Do(func() { close(s.listening) })
	for {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.PollInterval)
		_, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			s.notifyCommitted()
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			head, err := s.pollHead(ctx, conn)
			if err != nil {
				return err
			}
			if head != seen {
				s.notifyCommitted()
			}
			seen = head
		default:
			return err
		}
	}
}

func (s *EventStore) pollHead(ctx context.Context, conn *pgx.Conn) (int64, error) {
	var head int64
	err := conn.QueryRow(ctx, `SELECT position FROM log_head`).Scan(&head)
	return head, err
}
