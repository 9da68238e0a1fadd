package legacy

import (
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/interactionledger/ledger/domain"
)

// Plan is the ordered list of commands an import appends, kept in a
// scratch database rather than in memory: Each reads it in order, Errors
// lists the rows Parse rejected. Close removes it.
type Plan struct {
	Rows     int // data rows read
	Steps    int // events the plan appends
	Rejected int // rows rejected (Errors lists them)

	source string // the source system, the events' metadata with each row id
	kinds  domain.KindSet
	s      *scratch
}

// Close removes the plan's scratch database.
func (p *Plan) Close() error { return p.s.close() }

// Parse reads a legacy CSV export into a plan, which the caller closes.
// Every rejected row is in the plan (Errors). The error is for a file that
// cannot be read as such at all (no or bad header, broken CSV quoting), a
// scratch database that fails, or ctx ending; no plan is left then.
func Parse(ctx context.Context, r io.Reader, kinds domain.KindSet, source string) (*Plan, error) {
	// Row ids are checked to be short decimals, so once the source is a
	// valid metadata value every event's metadata is (Each relies on it).
	if _, err := domain.NewMetadata(map[string]string{"source": source}); err != nil {
		return nil, fmt.Errorf("source %q: %w", source, err)
	}
	cr, idx, err := readHeader(r)
	if err != nil {
		return nil, err
	}
	s, err := openScratch(ctx)
	if err != nil {
		return nil, err
	}
	p := &Plan{source: source, kinds: kinds, s: s}
	if err := p.build(ctx, cr, idx); err != nil {
		_ = s.close()
		if ctx.Err() != nil {
			// The transaction was rolled back under the statement
			// that failed: ctx is why.
			return nil, ctx.Err()
		}
		return nil, err
	}
	return p, nil
}

// readHeader starts reading the file: a CSV reader past its header, and
// the column of each name.
func readHeader(r io.Reader) (*recordReader, map[string]int, error) {
	cr := newRecordReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("the file is empty, not even a header: %w", domain.ErrInvalidInput)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read header: %w", badCSV(err))
	}
	// Spreadsheets and database tools often start a UTF-8 CSV with a
	// byte order mark, which would otherwise be part of the first name.
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	if strings.HasPrefix(header[0], "\xff\xfe") || strings.HasPrefix(header[0], "\xfe\xff") {
		return nil, nil, fmt.Errorf("the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as UTF-8: %w", domain.ErrInvalidInput)
	}
	idx, err := columnIndex(header)
	return cr, idx, err
}

// build loads the rows, rejects repeated ids and overlapping rows, and
// orders the events.
func (p *Plan) build(ctx context.Context, cr *recordReader, idx map[string]int) error {
	if err := p.s.inTx(ctx, func(tx *sql.Tx) error { return p.load(ctx, tx, cr, idx) }); err != nil {
		return err
	}
	return p.s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, rejectRepeatedIDs); err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
		if err := checkPairs(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, orderPlan); err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
		err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM plan), (SELECT count(*) FROM rejected)`).Scan(&p.Steps, &p.Rejected)
		return err
	})
}

// load reads every data row into the scratch database: row if it is good,
// rejected if not.
func (p *Plan) load(ctx context.Context, tx *sql.Tx, cr *recordReader, idx map[string]int) error {
	// The statements run without ctx, which the driver would watch from a
	// goroutine of its own each time; the loop checks it instead.
	quiet := context.WithoutCancel(ctx)
	good, err := tx.PrepareContext(quiet, `INSERT INTO row VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer good.Close()
	bad, err := tx.PrepareContext(quiet, `INSERT INTO rejected VALUES (?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("scratch database: %w", err)
	}
	defer bad.Close()
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read: %w", badCSV(err))
		}
		if p.Rows++; p.Rows%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		line, _ := cr.FieldPos(0)
		if rw, rerr := parseRow(rec, idx, p.kinds, line); rerr != nil {
			_, err = bad.ExecContext(quiet, rerr.Line, rerr.Column, rerr.Reason)
		} else {
			_, err = good.ExecContext(quiet, rw.values()...)
		}
		if err != nil {
			return fmt.Errorf("scratch database: %w", err)
		}
	}
}

// values are the columns of r in the table row.
func (r row) values() []any {
	id, _ := strconv.ParseInt(r.id, 10, 64) // parseRow checked it
	return []any{r.line, id, r.id, r.stream.User.String(), r.stream.Target.Type(), r.stream.Target.ID(),
		r.kind.String(), r.deleted, r.created.Unix(), r.updated.Unix()}
}

// badCSV marks a CSV syntax error (a stray quote, say) as bad input: the
// file is wrong, not the ledger.
func badCSV(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%w: %w", err, domain.ErrInvalidInput)
	}
	return err
}

// rejectRepeatedIDs rejects a row whose id an earlier good row of the file
// has: its events would derive the same ids, and the import would take
// the second for the first, already present. (parseRow refused a leading
// zero, so an id's value and its text, which event ids derive from, are
// one.)
const rejectRepeatedIDs = `
INSERT INTO rejected (line, col, reason)
SELECT line, 'id', id_text || ' repeats the id of line ' || first
FROM (SELECT line, id_text, min(line) OVER (PARTITION BY id) AS first FROM row)
WHERE line > first;
DELETE FROM row WHERE line IN (SELECT line FROM rejected WHERE col = 'id');
`

// orderPlan orders the steps by time; at one time, a pair's steps in their
// own order, and pairs by their first line, so that a plan is the same on
// every run. after is how many of the plan's events the step's stream
// (user and target) holds before it: the version it is appended after.
const orderPlan = `
INSERT INTO plan (n, line, cancel, at, after)
SELECT row_number() OVER (ORDER BY at, pair_line, seq), line, cancel, at,
	row_number() OVER (PARTITION BY stream ORDER BY at, pair_line, seq) - 1
FROM step;
DELETE FROM step;
`
