package projections

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
)

// TestInTx: inTx commits what fn wrote only when fn succeeds and the
// context has not ended, and leaves the one write connection usable
// whatever happened: rolled back by inTx, by SQLite itself, or discarded
// when the rollback could not end the transaction.
func TestInTx(t *testing.T) {
	errBoom := errors.New("boom")
	cases := []struct {
		name      string
		fn        func(ctx context.Context, cancel func(), q querier) error
		rollback  string // rollbackSQL during the case
		wantErr   error
		wantCount int
	}{
		{"commits", func(ctx context.Context, _ func(), q querier) error { return insertOne(ctx, q) }, "", nil, 1},
		{"fn fails", func(ctx context.Context, _ func(), q querier) error {
			return errors.Join(insertOne(ctx, q), errBoom)
		}, "", errBoom, 0},
		{"context ends before the commit", func(ctx context.Context, cancel func(), q querier) error {
			err := insertOne(ctx, q)
			cancel()
			return err
		}, "", context.Canceled, 0},
		{"SQLite already rolled back", func(ctx context.Context, _ func(), q querier) error {
			err := insertOne(ctx, q)
			_, rbErr := q.ExecContext(ctx, `ROLLBACK`)
			return errors.Join(err, rbErr, errBoom)
		}, "", errBoom, 0},
		{"rollback fails: the connection is discarded", func(ctx context.Context, _ func(), q querier) error {
			return errors.Join(insertOne(ctx, q), errBoom)
		}, `ROLLBACK TO no_such_savepoint`, errBoom, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := openTestViews(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if c.rollback != "" {
				old := rollbackSQL
				rollbackSQL = c.rollback
				defer func() { rollbackSQL = old }()
			}
			err := inTx(ctx, v.write, func(q querier) error { return c.fn(ctx, cancel, q) })
			if !errors.Is(err, c.wantErr) || (c.wantErr == nil) != (err == nil) {
				t.Fatalf("inTx: %v, want %v", err, c.wantErr)
			}
			rollbackSQL = `ROLLBACK`
			if n := count(t, v); n != c.wantCount {
				t.Fatalf("%d rows after inTx, want %d", n, c.wantCount)
			}
			// The pool's one connection takes the next transaction.
			bg := context.Background()
			if err := inTx(bg, v.write, func(q querier) error { return insertOne(bg, q) }); err != nil {
				t.Fatalf("the transaction after: %v", err)
			}
			if n := count(t, v); n != c.wantCount+1 {
				t.Fatalf("%d rows after the next transaction, want %d", n, c.wantCount+1)
			}
		})
	}
}

func openTestViews(t *testing.T) *views {
	t.Helper()
	ctx := context.Background()
	v, err := openViews(ctx, filepath.Join(t.TempDir(), "tx.views"), shared, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.close() })
	if _, err := v.write.ExecContext(ctx, `CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	return v
}

func insertOne(ctx context.Context, q querier) error {
	_, err := q.ExecContext(ctx, `INSERT INTO t (x) VALUES (1)`)
	return err
}

func count(t *testing.T, v *views) int {
	t.Helper()
	var n int
	if err := v.write.QueryRowContext(context.Background(), `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
