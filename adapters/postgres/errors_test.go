package postgres

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/interactionledger/ledger/domain"
)

// TestTranslate checks the SQLSTATE mapping: faults of the server or the
// connection are domain.ErrUnavailable with a reason, the log's unique
// constraints their sentinels, a statement's own error stays as it is.
func TestTranslate(t *testing.T) {
	pg := func(code, constraint string) error {
		return &pgconn.PgError{Code: code, ConstraintName: constraint, Message: "m"}
	}
	cases := []struct {
		err  error
		want error
	}{
		{pg("57P01", ""), domain.ErrUnavailable},
		{pg("08006", ""), domain.ErrUnavailable},
		{pg("53300", ""), domain.ErrUnavailable},
		{pg("55P03", ""), domain.ErrUnavailable},
		{pg("25006", ""), domain.ErrUnavailable},
		{pg("40001", ""), domain.ErrUnavailable},
		{pg("42P01", ""), domain.ErrUnavailable}, // the schema dropped under a running node: not a 500
		{pg("3F000", ""), domain.ErrUnavailable},
		{pg("42P10", ""), domain.ErrUnavailable}, // a pg_restore --clean under a running node, before its constraints: not a 500
		{io.ErrUnexpectedEOF, domain.ErrUnavailable},
		{pg("23505", "events_id"), domain.ErrDuplicateEvent},
		{pg("23505", "events_stream_version"), domain.ErrVersionConflict},
		{pg("23505", "idempotency_pkey"), domain.ErrIdempotencyKeyTaken},
	}
	for _, c := range cases {
		got := translate(t.Context(), c.err)
		if !errors.Is(got, c.want) {
			t.Errorf("translate(%v) = %v, want %v", c.err, got, c.want)
		}
		var r interface{ Reason() string }
		if c.want == domain.ErrUnavailable && (!errors.As(got, &r) || r.Reason() == "") {
			t.Errorf("translate(%v) = %v has no reason", c.err, got)
		}
	}
	syntax := pg("42601", "")
	if got := translate(t.Context(), syntax); got != syntax {
		t.Errorf("a statement's own error became %v", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if got := translate(ctx, io.ErrUnexpectedEOF); !errors.Is(got, context.Canceled) {
		t.Errorf("an error after ctx ended is %v, want ctx's error", got)
	}
}
