package postgres

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/interactionledger/ledger/adapters/storebench"
	"github.com/interactionledger/ledger/domain"
)

// MeasureAppend opens a store with cfg (on a schema of its own, which the
// caller drops afterwards with DropSchema) and times n one-event appends
// to distinct streams made by appenders goroutines (storebench's
// workload). cfg.OnCommit is replaced. It returns domain.ErrInvalidInput
// for bad arguments and the store's errors.
func MeasureAppend(ctx context.Context, cfg Config, appenders, n int) (storebench.Result, error) {
	reqs, err := storebench.Requests(n)
	if err != nil {
		return storebench.Result{}, err
	}
	var commits atomic.Int64
	cfg.OnCommit = func(st CommitStats) {
		if st.Err == nil {
			commits.Add(1)
		}
	}
	s, err := Open(ctx, cfg, nil)
	if err != nil {
		return storebench.Result{}, err
	}
	defer s.Close()
	res, err := storebench.Run(ctx, s, appenders, reqs)
	if err != nil {
		return storebench.Result{}, err
	}
	res.Commits = int(commits.Load())
	return res, s.Close()
}

// The alternative measured against the head row: positions from a
// bigserial, each row stamped with its transaction id for xid8 tailing
// (watermill-sql's design), one transaction per append, no lock of our
// own. A tailer of this table must hold back behind the oldest running
// transaction; the write side is what is measured here.
const sequenceSchema = `
CREATE TABLE seq_streams (
    stream_key bigserial PRIMARY KEY, user_id text NOT NULL, target_type text NOT NULL,
    target_id text NOT NULL, version bigint NOT NULL, state text NOT NULL,
    UNIQUE (user_id, target_type, target_id));
CREATE TABLE seq_events (
    position bigserial PRIMARY KEY,
    transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
    id uuid NOT NULL UNIQUE, stream_key bigint NOT NULL, stream_version bigint NOT NULL,
    type text NOT NULL, kind text NOT NULL, occurred_at bigint NOT NULL, recorded_at bigint NOT NULL,
    metadata text, UNIQUE (stream_key, stream_version));
CREATE INDEX seq_events_tx ON seq_events (transaction_id, position);`

const sequenceInsert = `WITH s AS (
    INSERT INTO seq_streams (user_id, target_type, target_id, version, state)
    VALUES ($1, $2, $3, 1, 'like') RETURNING stream_key)
  INSERT INTO seq_events (id, stream_key, stream_version, type, kind, occurred_at, recorded_at, metadata)
  SELECT $4, stream_key, 1, $5, $6, $7, $8, $9 FROM s`

// maxBenchConns bounds the connections of MeasureSequenceInsert: the
// server's max_connections (100 by default) is shared with everyone else.
const maxBenchConns = 48

// MeasureSequenceInsert times the same workload as MeasureAppend written
// the alternative way (sequenceSchema): appenders goroutines over up to
// maxBenchConns connections, each committing one append (its stream row
// and its event) per transaction, durably. It creates its tables in schema, which the caller drops with
// DropSchema. It returns domain.ErrInvalidInput for bad arguments,
// domain.ErrUnavailable when the database fails, and ctx's error.
func MeasureSequenceInsert(ctx context.Context, url, schema string, appenders, n int) (storebench.Result, error) {
	reqs, err := storebench.Requests(n)
	if err != nil {
		return storebench.Result{}, err
	}
	if appenders < 1 {
		return storebench.Result{}, fmt.Errorf("bench: appenders must be >= 1: %w", domain.ErrInvalidInput)
	}
	pcfg, _, err := poolConfig(Config{URL: url, Schema: schema, MaxConns: int32(min(appenders, maxBenchConns))})
	if err != nil {
		return storebench.Result{}, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return storebench.Result{}, translate(ctx, err)
	}
	defer pool.Close()
	ddl := `CREATE SCHEMA ` + pgx.Identifier{schema}.Sanitize() + `; SET search_path = ` +
		pgx.Identifier{schema}.Sanitize() + `; ` + sequenceSchema
	if _, err := pool.Exec(ctx, ddl); err != nil {
		return storebench.Result{}, fmt.Errorf("bench schema: %w", translate(ctx, err))
	}
	var next atomic.Int64
	errs := make(chan error, appenders)
	var wg sync.WaitGroup
	start := time.Now()
	for range appenders {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(reqs)); i = next.Add(1) - 1 {
				if err := insertOne(ctx, pool, reqs[i]); err != nil {
					errs <- fmt.Errorf("bench insert: %w", translate(ctx, err))
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return storebench.Result{}, err
	}
	return storebench.Result{Appends: n, Elapsed: elapsed, PerSecond: float64(n) / elapsed.Seconds(), Commits: n}, nil
}

func insertOne(ctx context.Context, pool *pgxpool.Pool, req domain.AppendRequest) error {
	e := req.Events[0]
	st := req.Stream
	_, err := pool.Exec(ctx, sequenceInsert, st.User.String(), st.Target.Type(), st.Target.ID(),
		[16]byte(e.ID), string(e.Type), e.Kind.String(), e.OccurredAt.UnixNano(), time.Now().UnixNano(),
		`{"request_id":"bench"}`)
	return err
}

// DropSchema drops schema and everything in it, for benchmarks that made
// one. It returns domain.ErrInvalidInput for a bad URL or schema name and
// domain.ErrUnavailable when the database fails.
func DropSchema(ctx context.Context, url, schema string) error {
	pcfg, _, err := poolConfig(Config{URL: url, Schema: schema})
	if err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, pcfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, translate(ctx, err))
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, translate(ctx, err))
	}
	return nil
}
