package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/interactionledger/ledger/domain"
)

// SQLSTATE codes and classes this package acts on.
const (
	codeUniqueViolation = "23505"
	codeReadOnlyTx      = "25006"
	codeUndefinedTable  = "42P01"
	// codeNoConflictTarget: an ON CONFLICT whose unique constraint is not
	// there; the migrations make every one the ledger's statements name, so
	// the schema is being made again under the node (a pg_restore --clean
	// without --single-transaction creates the tables, copies the rows,
	// then adds the constraints).
	codeNoConflictTarget = "42P10"
	codeUndefinedSchema  = "3F000"
	codeLockNotAvailable = "55P03"
	codeQueryCanceled    = "57014"
)

// translate turns driver errors into domain errors by SQLSTATE: failures
// of the server or the connection become domain.ErrUnavailable (keeping
// the cause), unique violations of the log's constraints their sentinels.
// ctx's own error is returned as it is; other server errors (a bug in a
// statement) are returned unchanged.
func translate(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("%w (%w)", ctxErr, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, domain.ErrUnavailable) {
		return err // classified already (ErrLogReplaced from a batch's callback)
	}
	// A connection that could not be made is unavailable whatever the
	// server said when it refused it (55000 "database is not currently
	// accepting connections", 42501 at login...): the statement never ran.
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		var refused *pgconn.PgError
		if errors.As(err, &refused) {
			return unavailable("database refused the connection: "+refused.Message, err)
		}
		return unavailable("database connection failed", err)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		// Not the server's answer: the connection failed or could not be
		// made (refused, reset, closed, timed out).
		return unavailable("database connection failed", err)
	}
	if pe.Code == codeLogMoved {
		return movedError(pe.Message)
	}
	if pe.Code == codeUniqueViolation {
		if sentinel := constraintError(pe.ConstraintName); sentinel != nil {
			return fmt.Errorf("%w: %w", sentinel, err)
		}
	}
	if what := serverFault(pe.Code); what != "" {
		return unavailable(what, err)
	}
	return err
}

// serverFault names a SQLSTATE that means "the database cannot serve this
// now", or "" for any other code.
func serverFault(code string) string {
	switch {
	case code == codeReadOnlyTx:
		return "database is read-only (a replica?)"
	case code == "3D000":
		return "database does not exist"
	case code == "57P01", code == "57P02":
		return "database connection terminated by the server"
	case code == "57P03":
		return "database is starting up or shutting down"
	case code == codeLockNotAvailable:
		// The writer's head lock is named by headLockError; any other
		// wait ran out of a lock_timeout the URL sets.
		return "timed out waiting for a lock (the URL's lock_timeout) that another session holds"
	case code == codeUndefinedTable, code == codeUndefinedSchema:
		return "the ledger's tables are gone from the schema (dropped under this node?)"
	case code == codeNoConflictTarget:
		return "the ledger's tables lack their constraints (the schema being restored under this node?)"
	}
	switch code[:2] {
	case "08":
		return "database connection failed"
	case "28":
		return "database refused the credentials"
	case "40":
		return "transaction rolled back by the database"
	case "53":
		return "database is out of resources (disk, memory, connections)"
	case "57":
		return "database cancelled the statement"
	case "58":
		return "database I/O error"
	case "XX":
		return "database internal error"
	}
	return ""
}

// constraintError maps the log's unique constraints to domain sentinels.
func constraintError(name string) error {
	switch name {
	case "events_id":
		return domain.ErrDuplicateEvent
	case "events_stream_version":
		return domain.ErrVersionConflict
	case "idempotency_pkey":
		return domain.ErrIdempotencyKeyTaken
	}
	return nil
}

func unavailable(what string, err error) error {
	return &storeError{msg: "postgres: " + what, cause: err, kind: domain.ErrUnavailable}
}

// storeError matches both its domain sentinel and its driver cause.
type storeError struct {
	msg   string
	cause error
	kind  error
}

func (e *storeError) Error() string   { return e.msg + ": " + e.cause.Error() }
func (e *storeError) Unwrap() []error { return []error{e.kind, e.cause} }

// Reason says in a few words what is wrong with the database ("database
// connection failed"), without the driver's detail, so the HTTP adapter
// can tell clients why writes are refused.
func (e *storeError) Reason() string { return e.msg[len("postgres: "):] }
