package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
)

// hotStmts are the statements every append runs (BEGIN, the data version,
// the new stream's row, the event, COMMIT), prepared on the writer's
// driver connection and run on it inside sql.Conn.Raw, without
// database/sql's per-call wrappers (argument conversion, result and row
// objects, dependency tracking: ~6 allocations per statement). The event
// insert goes through the driver's Query (mattn/go-sqlite3), which resets,
// binds every argument and steps in one cgo call, where Exec makes one
// call per argument; the new stream's insert needs Exec's count of changed
// rows. Only the writer, holding wmu, uses them. Measured on a lone
// appender: 63 allocations per append fell to 41, and the lone ratio of
// `bench store` rose (see docs/performance.md).
//
// insertTargets, insertUsers and setThrough move the stream indexes'
// watermark (indexStreams); they run once per few thousand new streams, and
// are here so that the raw baselines of benchload.go pay them as the writer
// does. The writer runs its other statements, prepared on the same
// connection (prepareStmts), through exec, query and each too; dest is as
// wide as the widest row they read.
type hotStmts struct {
	begin, commit, dataVersion, insertNewStream, insertEvent driver.Stmt
	insertTargets, insertUsers, setThrough                   driver.Stmt
	args                                                     [9]driver.NamedValue
	dest                                                     [4]driver.Value
}

// prepare prepares the statements on c.
func (h *hotStmts) prepare(ctx context.Context, c driver.Conn) error {
	return prepareStmts(ctx, c, []stmtSQL{
		{&h.begin, sqlBegin}, {&h.commit, sqlCommit}, {&h.dataVersion, sqlDataVersion},
		{&h.insertNewStream, sqlInsertNewStream}, {&h.insertEvent, sqlInsertEvent},
		{&h.insertTargets, sqlInsertTargets}, {&h.insertUsers, sqlInsertUsers}, {&h.setThrough, sqlSetThrough},
	})
}

// stmtSQL is a statement to prepare and where to keep it.
type stmtSQL struct {
	stmt *driver.Stmt
	sql  string
}

// prepareStmts prepares each of list on c; a statement kept is closed by
// its owner even when it is refused here.
func prepareStmts(ctx context.Context, c driver.Conn, list []stmtSQL) error {
	pc, ok := c.(driver.ConnPrepareContext)
	if !ok {
		return fmt.Errorf("driver connection %T cannot prepare with a context", c)
	}
	for _, p := range list {
		stmt, err := pc.PrepareContext(ctx, p.sql)
		if err != nil {
			return fmt.Errorf("prepare: %w", translate(err))
		}
		*p.stmt = stmt
		_, queries := stmt.(driver.StmtQueryContext)
		if _, execs := stmt.(driver.StmtExecContext); !queries || !execs {
			return fmt.Errorf("driver statement %T runs no Query or Exec with a context", stmt)
		}
	}
	return nil
}

// close closes the prepared statements.
func (h *hotStmts) close() error {
	return closeStmts(h.begin, h.commit, h.dataVersion, h.insertNewStream, h.insertEvent,
		h.insertTargets, h.insertUsers, h.setThrough)
}

// closeStmts closes the statements of list that were prepared.
func closeStmts(list ...driver.Stmt) error {
	var errs []error
	for _, st := range list {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// indexStreams adds the streams with keys in (through, last] to the
// stream indexes (stream_targets and stream_users), each in its key order,
// and moves the watermark to last, once at least every of them wait, in
// the transaction open on the connection. It returns the watermark after.
// A stream already in stream_users (two streams of one identity: the
// writer's lookups failed) is a constraint error that fails the commit.
func (h *hotStmts) indexStreams(ctx context.Context, through, last, every int64) (int64, error) {
	if last-through < every {
		return through, nil
	}
	if _, err := h.exec(ctx, h.insertTargets, through, last); err != nil {
		return through, fmt.Errorf("index targets: %w", translate(err))
	}
	if _, err := h.exec(ctx, h.insertUsers, through, last); err != nil {
		return through, fmt.Errorf("index users: %w", translate(err))
	}
	if _, err := h.exec(ctx, h.setThrough, last); err != nil {
		return through, fmt.Errorf("move the target index's watermark: %w", translate(err))
	}
	return last, nil
}

// query runs stmt with args (at most len(h.args)) and returns whether it
// answered a row; dest receives the row's first columns.
func (h *hotStmts) query(ctx context.Context, stmt driver.Stmt, dest []driver.Value, args ...any) (bool, error) {
	named := h.named(args)
	rows, err := stmt.(driver.StmtQueryContext).QueryContext(ctx, named)
	clear(named)
	if err != nil {
		return false, err
	}
	err = rows.Next(dest)
	closeErr := rows.Close()
	switch {
	case errors.Is(err, io.EOF):
		return false, closeErr
	case err != nil:
		return false, errors.Join(err, closeErr)
	}
	return true, closeErr
}

// each runs stmt with args and calls fn with every row it answers, its
// columns in dest, until fn fails.
func (h *hotStmts) each(ctx context.Context, stmt driver.Stmt, dest []driver.Value, fn func() error, args ...any) error {
	named := h.named(args)
	rows, err := stmt.(driver.StmtQueryContext).QueryContext(ctx, named)
	clear(named)
	if err != nil {
		return err
	}
	for {
		err := rows.Next(dest)
		if errors.Is(err, io.EOF) {
			return rows.Close()
		}
		if err == nil {
			err = fn()
		}
		if err != nil {
			return errors.Join(err, rows.Close())
		}
	}
}

// exec runs stmt with args (at most len(h.args)) and returns the number
// of rows it changed.
func (h *hotStmts) exec(ctx context.Context, stmt driver.Stmt, args ...any) (int64, error) {
	named := h.named(args)
	res, err := stmt.(driver.StmtExecContext).ExecContext(ctx, named)
	clear(named)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// named puts args in h's reused argument array; the caller clears it
// after the call, so that it holds no values between appends.
func (h *hotStmts) named(args []any) []driver.NamedValue {
	return numbered(h.args[:len(args)], args)
}

// numbered fills dst (as long as args) with args as a driver's positional
// parameters and returns it.
func numbered(dst []driver.NamedValue, args []any) []driver.NamedValue {
	for i, a := range args {
		dst[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return dst
}
