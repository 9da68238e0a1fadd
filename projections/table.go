package projections

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/mattn/go-sqlite3"
)

// interactionTable is the shape shared by the viewer, actors and
// collection projections: one row per interaction that is on, deleted
// when it turns off. They differ in their key order and indexes, which
// serve their queries (each in its own file, with its table).
type interactionTable struct {
	table   string
	columns string                            // column definitions, for CREATE TABLE
	key     string                            // the primary key's columns
	indexes []string                          // CREATE INDEX bodies; %[1]s is the table, %[2]d the generation
	delete  string                            // WHERE clause naming the interaction; %s is the table
	insert  string                            // column list of INSERT, matching insArgs
	order   func(b *batch, c *change) sortKey // primary-key order
	delArgs func(b *batch, c *change) []any
	insArgs func(args []any, v *boxed, c *change) []any // appends the row's values
}

// interactionTable is a projection of one table: its name is the
// table's, and its schema version is 1.
func (t *interactionTable) name() string     { return t.table }
func (*interactionTable) version() int64     { return 1 }
func (t *interactionTable) tables() []string { return []string{t.table} }

func (t *interactionTable) create(ctx context.Context, tx querier, sfx string) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf(
		`CREATE TABLE IF NOT EXISTS %s (%s, PRIMARY KEY (%s)) WITHOUT ROWID`, t.table+sfx, t.columns, t.key))
	return err
}

func (t *interactionTable) index(ctx context.Context, tx querier, sfx string, gen int64) error {
	for _, ix := range t.indexes {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(ix, t.table+sfx, gen)); err != nil {
			return err
		}
	}
	return nil
}

// copyFrom fills the table (suffix sfx), empty and without secondary
// indexes, with the rows of src (the same rows, other keys), inserted in
// its key order: SQLite sorts them on the build connection's sorter
// threads, and no value crosses into Go and back.
func (t *interactionTable) copyFrom(ctx context.Context, tx querier, src *interactionTable, sfx string) error {
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`INSERT INTO %s (%s) SELECT %[2]s FROM %s ORDER BY %s`,
		t.table+sfx, t.insert, src.table+sfx, t.key))
	return err
}

// apply deletes the row of every interaction that existed before the batch
// and inserts a row for every interaction that is on after it. An insert
// that collides with an existing row means the table disagrees with the
// log; the unique constraint turns that into a loud error.
func (t *interactionTable) apply(ctx context.Context, tx querier, sfx string, b *batch, _ *[]AppliedEvent) error {
	changes := b.sortedChanges(t.order)
	name := t.table + sfx
	del := fmt.Sprintf(`DELETE FROM %s WHERE %s`, name, t.delete)
	for _, c := range changes {
		if !c.existed {
			continue
		}
		res, err := tx.ExecContext(ctx, del, t.delArgs(b, c)...)
		if err != nil {
			return fmt.Errorf("%s: delete: %w", t.table, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			tk := b.target(c.key.target)
			return fmt.Errorf("%s: %s %s/%s %s was not on: %w",
				t.table, b.user(c.key), tk.ttype, tk.tid, b.kind(c.key.kind), ErrInconsistent)
		}
	}
	return t.insertAll(ctx, tx, b, name, changes)
}

// insertShapes are the numbers of rows an INSERT statement carries, the
// largest first: multi-row statements amortise the per-statement cost of
// the driver, and a few fixed shapes keep each one prepared in the
// driver's per-connection statement cache (a statement of any other row
// count would be parsed anew each batch, an eighth of a small batch's
// cost).
var insertShapes = [...]int{64, 16, 4, 1}

// insertAll filters changes in place (the caller is done with them).
func (t *interactionTable) insertAll(ctx context.Context, tx querier, b *batch, name string, changes []*change) error {
	on := changes[:0]
	for _, c := range changes {
		if c.on {
			on = append(on, c)
		}
	}
	cols := strings.Count(t.insert, ",") + 1
	v := b.boxed()
	args := make([]any, 0, insertShapes[0]*cols)
	for _, n := range insertShapes {
		if len(on) < n {
			continue
		}
		ins, err := newInserter(ctx, tx, insertSQL(name, t.insert, cols, n), len(on)/n)
		if err != nil {
			return err
		}
		for len(on) >= n {
			args = args[:0]
			for _, c := range on[:n] {
				args = t.insArgs(args, v, c)
			}
			if err := ins.insert(ctx, args); err != nil {
				ins.close()
				if violates(err, sqlite3.ErrConstraintUnique, sqlite3.ErrConstraintPrimaryKey) {
					err = fmt.Errorf("%w (%v)", ErrInconsistent, err)
				}
				return fmt.Errorf("%s: insert: %w", t.table, err)
			}
			on = on[n:]
		}
		ins.close()
	}
	return nil
}

// inserter runs one INSERT statement: prepared for this transaction when
// it runs many times (a build's bulk load), else by its text through the
// driver's statement cache (a live batch's few rows).
type inserter struct {
	tx    querier
	query string
	stmt  *sql.Stmt // nil: by text
}

func newInserter(ctx context.Context, tx querier, query string, runs int) (*inserter, error) {
	ins := &inserter{tx: tx, query: query}
	if runs > 1 {
		var err error
		if ins.stmt, err = tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
	}
	return ins, nil
}

// insert runs an INSERT statement through Query rather than Exec: the
// driver (mattn/go-sqlite3) then binds every argument and steps in one cgo
// call, where Exec makes one call per argument and, with a cancellable
// context, starts a goroutine per statement. Measured on the single fold
// of a 10M-event rebuild (2.5M rows into each table): writing took 11.1 s
// instead of 14.2 s.
func (ins *inserter) insert(ctx context.Context, args []any) error {
	var rows *sql.Rows
	var err error
	if ins.stmt != nil {
		rows, err = ins.stmt.QueryContext(ctx, args...)
	} else {
		rows, err = ins.tx.QueryContext(ctx, ins.query, args...)
	}
	if err != nil {
		return err
	}
	return rows.Close()
}

func (ins *inserter) close() {
	if ins.stmt != nil {
		ins.stmt.Close()
	}
}

func insertSQL(table, columns string, cols, rows int) string {
	one := "(" + strings.Repeat("?,", cols-1) + "?)"
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, columns)
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(one)
	}
	return b.String()
}

// viewerTable keeps, per (user, target, kind) that is on, since when.

// actorsTable keeps who turned kind k on for target t, keyed by the
// position of the turn-on so that newest-first pages are range scans.

// collectionTable keeps what user u turned kind k on for, keyed by
// position; a second index serves the per-target-type filter.
