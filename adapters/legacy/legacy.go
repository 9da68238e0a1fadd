package legacy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/domain"
)

// Columns are the header names the importer requires (in any order).
var Columns = []string{"id", "user_id", "action_type", "target_type", "target_id", "is_deleted", "created_at", "updated_at"}

// TimeLayout is the legacy timestamp form, in UTC.
const TimeLayout = "2006-01-02 15:04:05"

// RowError reports one rejected row by its line number in the file.
type RowError struct {
	Line   int
	Column string
	Reason string
}

func (e RowError) Error() string {
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, e.Reason)
}

// Step is one command of a Plan with the line it came from.
type Step struct {
	Line int
	// Command is the event's command, but for its metadata (the source
	// and the row id), which Apply gives it when it imports it: a
	// Metadata map a step, for every step of a large file at once, was
	// most of a plan's memory.
	Command domain.Command
	// After is how many of the plan's events its stream (user and target)
	// holds before this one: the version it is appended after.
	After int64

	rowID         string // the legacy row's id (legacy_id)
	pairLine, seq int    // plan's order at one time: the pair's first line, the step's index in the pair
}

// Plan is the ordered list of commands an import appends.
type Plan struct {
	Rows  int // data rows read
	Steps []Step

	source string // the source system (source), the events' metadata with each step's row id
}

// Command returns step i's command with its metadata (source, legacy_id).
func (p Plan) Command(i int) domain.Command {
	s := p.Steps[i]
	cmd := s.Command
	if s.rowID != "" {
		cmd.Metadata = domain.MustMetadata(map[string]string{"source": p.source, "legacy_id": s.rowID})
	}
	return cmd
}

// row is one valid legacy row.
type row struct {
	line             int
	id               string
	stream           domain.StreamID
	kind             domain.Kind
	deleted          bool
	created, updated time.Time
}

// Parse reads a legacy CSV export and returns the plan and every rejected
// row. The error is for a file that cannot be read as such at all (no or
// bad header, broken CSV quoting).
func Parse(r io.Reader, kinds domain.KindSet, source string) (Plan, []RowError, error) {
	// Row ids are checked to be short decimals, so once the source is a
	// valid metadata value every event's metadata is (steps relies on it).
	if _, err := domain.NewMetadata(map[string]string{"source": source}); err != nil {
		return Plan{}, nil, fmt.Errorf("source %q: %w", source, err)
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return Plan{}, nil, fmt.Errorf("the file is empty, not even a header: %w", domain.ErrInvalidInput)
	}
	if err != nil {
		return Plan{}, nil, fmt.Errorf("read header: %w", badCSV(err))
	}
	// Spreadsheets and database tools often start a UTF-8 CSV with a
	// byte order mark, which would otherwise be part of the first name.
	header[0] = strings.TrimPrefix(header[0], "\ufeff")
	idx, err := columnIndex(header)
	if err != nil {
		return Plan{}, nil, err
	}
	pairs := map[pairKey][]row{}
	var bad []RowError
	seen := map[uint64]int{} // row id → its line
	n := 0
	for ; ; n++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Plan{}, bad, fmt.Errorf("read: %w", badCSV(err))
		}
		line, _ := cr.FieldPos(0)
		rw, rerr := parseRow(rec, idx, kinds, line)
		if rerr == nil {
			rerr = repeatedID(seen, rw)
		}
		if rerr != nil {
			bad = append(bad, *rerr)
			continue
		}
		k := pairKey{rw.stream, rw.kind}
		pairs[k] = append(pairs[k], rw)
	}
	steps, overlaps := plan(pairs, source)
	bad = append(bad, overlaps...)
	slices.SortFunc(bad, func(a, b RowError) int { return a.Line - b.Line })
	return Plan{Rows: n, Steps: steps, source: source}, bad, nil
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

// repeatedID reports a row whose id (by value: 7 and 007 are one id) an
// earlier row of the file has: its events would derive the same ids, and
// the import would take the second for the first, already present.
func repeatedID(seen map[uint64]int, r row) *RowError {
	v, _ := strconv.ParseUint(r.id, 10, 63) // parseRow checked it
	if first, ok := seen[v]; ok {
		return &RowError{Line: r.line, Column: "id", Reason: fmt.Sprintf("%s repeats the id of line %d", r.id, first)}
	}
	seen[v] = r.line
	return nil
}

func columnIndex(header []string) (map[string]int, error) {
	idx := map[string]int{}
	for i, h := range header {
		if first, ok := idx[h]; ok {
			return nil, fmt.Errorf("header: column %q is both column %d and column %d: %w", h, first+1, i+1, domain.ErrInvalidInput)
		}
		idx[h] = i
	}
	for _, c := range Columns {
		if _, ok := idx[c]; !ok {
			return nil, fmt.Errorf("header: missing column %q (want %v): %w", c, Columns, domain.ErrInvalidInput)
		}
	}
	return idx, nil
}

func parseRow(rec []string, idx map[string]int, kinds domain.KindSet, line int) (row, *RowError) {
	get := func(c string) string {
		if i := idx[c]; i < len(rec) {
			return rec[i]
		}
		return ""
	}
	fail := func(col, format string, args ...any) (row, *RowError) {
		return row{}, &RowError{Line: line, Column: col, Reason: fmt.Sprintf(format, args...)}
	}
	if len(rec) != len(idx) {
		return fail("row", "has %d fields, the header has %d", len(rec), len(idx))
	}
	id := get("id")
	if _, err := strconv.ParseUint(id, 10, 63); err != nil {
		return fail("id", "%q is not a row id", id)
	}
	user, err := domain.NewUserID(get("user_id"))
	if err != nil {
		return fail("user_id", "%v", reason(err))
	}
	target, err := domain.NewTarget(get("target_type"), get("target_id"))
	if err == nil {
		err = domain.CheckAddressable(user, target)
	}
	if f := fieldOf(err, "target"); f == "user" {
		return fail("user_id", "%v", reason(err))
	} else if err != nil {
		return fail(f, "%v", reason(err))
	}
	kind, err := kinds.Parse(get("action_type"))
	if err != nil {
		return fail("action_type", "%q: %v (configured: %v)", get("action_type"), reason(err), kinds.Names())
	}
	var deleted bool
	switch get("is_deleted") {
	case "0":
	case "1":
		deleted = true
	default:
		return fail("is_deleted", "%q must be 0 or 1", get("is_deleted"))
	}
	created, err := parseTime(get("created_at"))
	if err != nil {
		return fail("created_at", "%q %s", get("created_at"), err)
	}
	updated, err := parseTime(get("updated_at"))
	if err != nil {
		return fail("updated_at", "%q %s", get("updated_at"), err)
	}
	if deleted && updated.Before(created) {
		return fail("updated_at", "cancelled at %s, before its creation at %s", get("updated_at"), get("created_at"))
	}
	return row{line: line, id: id, stream: domain.StreamID{User: user, Target: target},
		kind: kind, deleted: deleted, created: created, updated: updated}, nil
}

// pairKey is a pair (user and target) and a kind: the rows of one history.
type pairKey struct {
	s domain.StreamID
	k domain.Kind
}

// plan orders each pair's rows by creation, rejects rows that overlap the
// previous one of their pair (a second like while the first is still on),
// and merges every pair's commands into one time-ordered list.
func plan(pairs map[pairKey][]row, source string) ([]Step, []RowError) {
	var steps []Step
	var bad []RowError
	for k, rs := range pairs {
		slices.SortStableFunc(rs, pairOrder)
		var prev *row
		// A cancel and the pair's next add can share a time, and keep
		// their order whatever lines the rows are on.
		first, seq := slices.MinFunc(rs, func(a, b row) int { return a.line - b.line }).line, 0
		for i := range rs {
			r := &rs[i]
			if prev != nil && (!prev.deleted || r.created.Before(prev.updated)) {
				bad = append(bad, RowError{Line: r.line, Column: "created_at",
					Reason: fmt.Sprintf("overlaps line %d of the same user, target and kind", prev.line)})
				continue
			}
			for _, st := range r.steps(source) {
				st.pairLine, st.seq = first, seq
				steps = append(steps, st)
				seq++
			}
			prev = r
		}
		delete(pairs, k) // its rows are in steps now
	}
	// By time; at one time, a pair's steps in their own order, and pairs
	// by their first line, so that a plan is the same on every run.
	slices.SortFunc(steps, func(a, b Step) int {
		if c := a.Command.OccurredAt.Compare(b.Command.OccurredAt); c != 0 {
			return c
		}
		if a.pairLine != b.pairLine {
			return a.pairLine - b.pairLine
		}
		return a.seq - b.seq
	})
	written := map[domain.StreamID]int64{}
	for i := range steps {
		st := steps[i].Command.Stream
		steps[i].After = written[st]
		written[st]++
	}
	return steps, bad
}

// pairOrder orders one pair's rows: by creation; at one creation time,
// the rows that ended (deleted) before the one that stays, and those by
// their end, so that the plan does not depend on the file's line order.
func pairOrder(a, b row) int {
	if c := a.created.Compare(b.created); c != 0 {
		return c
	}
	if a.deleted != b.deleted {
		if a.deleted {
			return -1
		}
		return 1
	}
	return a.updated.Compare(b.updated)
}

// steps returns the commands of one row, without their metadata
// (Plan.Command gives it). Parse has checked the source and the row id, so
// the metadata is valid.
func (r row) steps(source string) []Step {
	add := domain.Command{Stream: r.stream, Kind: r.kind, On: true,
		OccurredAt: r.created, EventID: EventID(source, r.id, domain.EventAdded, r.created)}
	out := []Step{{Line: r.line, Command: add, rowID: r.id}}
	if r.deleted {
		cancel := add
		cancel.On = false
		cancel.OccurredAt = r.updated
		cancel.EventID = EventID(source, r.id, domain.EventCancelled, r.updated)
		out = append(out, Step{Line: r.line, Command: cancel, rowID: r.id})
	}
	return out
}

// EventID derives a stable UUIDv7-shaped id from a legacy row: the time
// bits are the event's time (so the id index stays time-ordered, as for
// live events) and the rest comes from a hash of source, row id and type.
func EventID(source, rowID string, typ domain.EventType, at time.Time) uuid.UUID {
	sum := sha256.Sum256([]byte(source + "\x00" + rowID + "\x00" + string(typ)))
	var id uuid.UUID
	copy(id[:], sum[:16])
	ms := uint64(at.UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms<<16)
	copy(id[:6], ts[:6])
	id[6] = id[6]&0x0f | 0x70 // version 7
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// Importer is the part of domain.Ledger that Apply needs.
type Importer interface {
	Import(ctx context.Context, cmd domain.Command, after int64) (domain.ImportResult, error)
}

// Result counts what Apply did.
type Result struct {
	Appended int // events appended
	Existing int // events already in the ledger (a re-run)
	// Conflicts are the rows not imported because their user and target
	// hold events in the ledger that the file did not write (a live like,
	// another import): appending older history after them would rewrite
	// the pair's present. Every later row of such a pair is one too.
	Conflicts []RowError
}

// Apply appends the plan's events in order. progress, when not nil, is
// called after each step with the number done. It stops at the first error
// (storage faults, cancellation); what was appended stays, and a re-run
// continues where it stopped.
func Apply(ctx context.Context, l Importer, p Plan, progress func(done int)) (Result, error) {
	var res Result
	conflicted := map[domain.StreamID]int{} // stream → line of its first conflict
	for i, s := range p.Steps {
		st := s.Command.Stream
		if first, ok := conflicted[st]; ok {
			res.Conflicts = append(res.Conflicts, RowError{Line: s.Line, Column: "user_id",
				Reason: fmt.Sprintf("not imported: its user and target conflict with the ledger (line %d)", first)})
		} else if err := apply(ctx, l, s, p.Command(i), &res, conflicted); err != nil {
			return res, err
		}
		if progress != nil {
			progress(i + 1)
		}
	}
	return res, nil
}

// apply imports one step, whose command is cmd, into res.
func apply(ctx context.Context, l Importer, s Step, cmd domain.Command, res *Result, conflicted map[domain.StreamID]int) error {
	r, err := l.Import(ctx, cmd, s.After)
	switch {
	case err != nil:
		return fmt.Errorf("line %d: %w", s.Line, err)
	case r == domain.Imported:
		res.Appended++
	case r == domain.AlreadyImported:
		res.Existing++
	default:
		conflicted[s.Command.Stream] = s.Line
		res.Conflicts = append(res.Conflicts, RowError{Line: s.Line, Column: "user_id",
			Reason: "not imported: its user and target already hold events in the ledger that this file did not write"})
	}
	return nil
}

// reason returns a ValidationError's reason, or the error text.
func reason(err error) string {
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return err.Error()
}

// fieldOf maps a domain field name to the legacy column.
func fieldOf(err error, fallback string) string {
	var ve *domain.ValidationError
	if errors.As(err, &ve) {
		return ve.Field
	}
	return fallback
}

// parseTime parses a row's time (TimeLayout, UTC), which must be one an
// event can hold (domain.ValidateEventTime): the log would otherwise store
// an overflowed time.
func parseTime(s string) (time.Time, error) {
	// The length too: Go's parser accepts fractional seconds the layout
	// does not have (2025-01-03 00:00:00.5).
	t, err := time.Parse(TimeLayout, s)
	if err != nil || len(s) != len(TimeLayout) {
		return t, errors.New("is not YYYY-MM-DD HH:MM:SS")
	}
	if err := domain.ValidateEventTime("", t); err != nil {
		// The bounds in whole seconds the layout can write, both inside.
		first, last := domain.MinTime.Truncate(time.Second).Add(time.Second), domain.MaxTime.Truncate(time.Second)
		return t, fmt.Errorf("is outside %s..%s, the times the log can hold", first.Format(TimeLayout), last.Format(TimeLayout))
	}
	return t, nil
}
