package legacy

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
)

// pairRows reads the good rows pair (user, target and kind) after pair,
// each pair's rows by creation; at one creation time, the rows that ended
// (deleted) before the one that stays, and those by their end, so that the
// plan does not depend on the file's line order (the line last, for rows
// alike). first is the pair's first line: it names the pair. The window's
// order is the query's, so that SQLite sorts the rows once.
const pairRows = `
SELECT line, deleted, created, updated, user, target_type, target_id,
	min(line) OVER (PARTITION BY user, target_type, target_id, kind
		ORDER BY created, deleted DESC, updated, line
		ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS first
FROM row
ORDER BY user, target_type, target_id, kind, created, deleted DESC, updated, line`

// pairRow is one row of pairRows.
type pairRow struct {
	line, first      int64
	deleted          bool
	created, updated int64
}

// pairCheck walks the rows of one pair after another.
type pairCheck struct {
	step, bad *sql.Stmt
	stream    int64   // the number of the pair's user and target
	streamKey []byte  // and the user and target
	first     int64   // the pair being walked
	prev      pairRow // its last row that passed
	havePrev  bool
	seq       int // its steps so far
}

// checkPairs rejects the rows that overlap the previous one of their pair
// (a second like while the first is still on) and writes the steps of the
// others: an add at creation, and a cancel at the end of a deleted row.
func checkPairs(ctx context.Context, tx *sql.Tx) error {
	quiet := context.WithoutCancel(ctx) // see load
	var c pairCheck
	var err error
	if c.step, err = tx.PrepareContext(quiet, `INSERT INTO step VALUES (?, ?, ?, ?, ?, ?)`); err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer c.step.Close()
	if c.bad, err = tx.PrepareContext(quiet, `INSERT INTO rejected VALUES (?, ?, ?)`); err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer c.bad.Close()
	rows, err := tx.QueryContext(quiet, pairRows)
	if err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer rows.Close()
	for n := 1; rows.Next(); n++ {
		var r pairRow
		var user, typ, id sql.RawBytes
		if err := rows.Scan(&r.line, &r.deleted, &r.created, &r.updated, &user, &typ, &id, &r.first); err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
		if n%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		c.streamOf(user, typ, id)
		if err := c.add(quiet, r); err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
	}
	return rows.Err()
}

// streamOf numbers the streams in the order they come: a pair's stream
// is the one before it or a new one.
func (c *pairCheck) streamOf(user, typ, id []byte) {
	key := append(append(append(append(append([]byte(nil), user...), 0), typ...), 0), id...)
	if c.stream == 0 || !bytes.Equal(key, c.streamKey) {
		c.stream++
		c.streamKey = key
	}
}

// add checks one row against the previous one of its pair.
func (c *pairCheck) add(ctx context.Context, r pairRow) error {
	if r.first != c.first {
		c.first, c.havePrev, c.seq = r.first, false, 0
	}
	if p := c.prev; c.havePrev && (!p.deleted || r.created < p.updated) {
		_, err := c.bad.ExecContext(ctx, r.line, "created_at",
			fmt.Sprintf("overlaps line %d of the same user, target and kind", p.line))
		return err
	}
	if err := c.addStep(ctx, r, r.created, false); err != nil {
		return err
	}
	if r.deleted {
		if err := c.addStep(ctx, r, r.updated, true); err != nil {
			return err
		}
	}
	c.prev, c.havePrev = r, true
	return nil
}

// addStep writes one step of row r: its add, or its cancel.
func (c *pairCheck) addStep(ctx context.Context, r pairRow, at int64, cancel bool) error {
	_, err := c.step.ExecContext(ctx, at, r.first, c.seq, r.line, cancel, c.stream)
	c.seq++
	return err
}
