package postgres_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/interactionledger/ledger/adapters/postgres"
	"github.com/interactionledger/ledger/adapters/postgres/pgtest"
	"github.com/interactionledger/ledger/adapters/storetest"
	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/testlog"
)

// openSchema opens a store on schema, closed when t ends.
func openSchema(t *testing.T, schema string, cfg postgres.Config) *postgres.EventStore {
	t.Helper()
	cfg.URL, cfg.Schema = pgtest.URL(t), schema
	s, err := postgres.Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestContract runs the store contract suite, each store in a schema of
// its own: the suite's path maps to the schema, so reopening a path sees
// its data.
func TestContract(t *testing.T) {
	pgtest.URL(t)
	storetest.Run(t, func(t *testing.T, path string) domain.EventStore {
		schema := pgtest.SchemaFor(path)
		pgtest.DropAtCleanup(t, schema)
		return openSchema(t, schema, postgres.Config{})
	})
}

// TestDecideContract runs the DecidingStore suite in the same way.
func TestDecideContract(t *testing.T) {
	pgtest.URL(t)
	storetest.RunDecide(t, func(t *testing.T, path string) domain.EventStore {
		schema := pgtest.SchemaFor(path)
		pgtest.DropAtCleanup(t, schema)
		return openSchema(t, schema, postgres.Config{})
	})
}

// TestDecideAcrossNodes: two stores on one schema (two nodes) toggling one
// stream at once are decided one after another under the head lock: no
// error, no conflict, and the stream's events alternate at consecutive
// versions, each outcome the state its command left.
func TestDecideAcrossNodes(t *testing.T) {
	schema := pgtest.Schema(t)
	nodes := []*postgres.EventStore{openSchema(t, schema, postgres.Config{}), openSchema(t, schema, postgres.Config{})}
	st := storetest.MustStream(t, "alice", "article/a1")
	var wg sync.WaitGroup
	var changed atomic.Int64
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				on := (w+i)%2 == 0
				out, err := nodes[w%2].Decide(t.Context(), domain.DecideRequest{Command: storetest.Command(t, st, "like", on)})
				if err != nil || out.Active != on {
					t.Errorf("node %d, on=%t: %+v, %v", w%2, on, out, err)
					return
				}
				if out.Changed {
					changed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	events := storetest.MustReadAll(t, nodes[0], domain.EventFilter{})
	if int64(len(events)) != changed.Load() {
		t.Fatalf("%d events for %d changed outcomes", len(events), changed.Load())
	}
	for i, e := range events {
		if e.StreamVersion != int64(i)+1 || (i > 0 && e.On() == events[i-1].On()) {
			t.Fatalf("event %d: version %d, on %t after %d events", e.Position, e.StreamVersion, e.On(), i)
		}
	}
}

// TestFailuresNotEndedByNoOps: a group commit of decided commands that
// change nothing inserts no row, so it commits while every insert into
// the log fails (here a trigger refuses them). Such a commit logged "group
// commit works again", and the next failed write was logged as a new
// run's first: an error line per failure, and a false recovery between
// them. The run of failures now goes on through them, logged once, and
// ends at the first commit that writes an event.
func TestFailuresNotEndedByNoOps(t *testing.T) {
	schema := pgtest.Schema(t)
	logs := &testlog.Buffer{}
	s, err := postgres.Open(t.Context(), postgres.Config{URL: pgtest.URL(t), Schema: schema},
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events, refuse := pgx.Identifier{schema, "events"}.Sanitize(), pgx.Identifier{schema, "refuse"}.Sanitize()
	storetest.CheckFailureRunSpansNoOps(t, s, logs, func() {
		pgtest.Exec(t, `CREATE FUNCTION `+refuse+`() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'refused'; END$$;
			CREATE TRIGGER refuse BEFORE INSERT ON `+events+` EXECUTE FUNCTION `+refuse+`()`)
	}, func() { pgtest.Exec(t, `DROP TRIGGER refuse ON `+events) })
}

// TestDecideReadOnly: Decide on a store opened read-only (storetest).
func TestDecideReadOnly(t *testing.T) {
	schema := pgtest.Schema(t)
	storetest.CheckDecideReadOnly(t, openSchema(t, schema, postgres.Config{}), openSchema(t, schema, postgres.Config{ReadOnly: true}))
}

// TestDecideOnABadStoredState: a stream whose stored state does not decode
// (another program wrote it) fails the command decided on it with
// ErrUnavailable naming the stored state. The error wrapped the decoding's
// *domain.ValidationError as well, so it matched ErrInvalidInput and the
// HTTP API answered 400, as if the client had sent a bad request.
func TestDecideOnABadStoredState(t *testing.T) {
	schema := pgtest.Schema(t)
	s := openSchema(t, schema, postgres.Config{})
	st := storetest.MustStream(t, "alice", "article/a1")
	storetest.MustDecide(t, s, domain.DecideRequest{Command: storetest.Command(t, st, "like", true)})
	pgtest.Exec(t, `UPDATE `+pgx.Identifier{schema, "streams"}.Sanitize()+` SET state = 'Not A Kind'`)
	_, err := s.Decide(t.Context(), domain.DecideRequest{Command: storetest.Command(t, st, "collect", true)})
	if !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, domain.ErrInvalidInput) || !strings.Contains(err.Error(), "stored state") {
		t.Fatalf("a command on a stream with a bad stored state: %v, want ErrUnavailable naming the stored state, not invalid input", err)
	}
}

// TestBadStoredStateReads: a snapshot and an idempotency record whose
// stored state does not decode are the log's fault (storetest).
func TestBadStoredStateReads(t *testing.T) {
	schema := pgtest.Schema(t)
	storetest.CheckBadStoredStateReads(t, openSchema(t, schema, postgres.Config{}), func() {
		pgtest.Exec(t, `UPDATE `+pgx.Identifier{schema, "streams"}.Sanitize()+` SET state = 'Not A Kind';
			UPDATE `+pgx.Identifier{schema, "idempotency"}.Sanitize()+` SET state = 'Not A Kind'`)
	})
}

// TestCopyContract runs the logcopy.Store suite: schema to schema.
func TestCopyContract(t *testing.T) {
	pgtest.URL(t)
	storetest.RunCopy(t, func(t *testing.T, path string) domain.EventStore {
		schema := "h1_" + pgtest.SchemaFor(path)[len("lt_"):]
		pgtest.DropAtCleanup(t, schema)
		return openSchema(t, schema, postgres.Config{})
	})
}
