package legacy

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
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

// row is one valid legacy row.
type row struct {
	line             int
	id               string
	stream           domain.StreamID
	kind             domain.Kind
	deleted          bool
	created, updated time.Time
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
			return nil, fmt.Errorf("header: missing column %q (want %v, got %s): %w", c, Columns, quotedStart(header), domain.ErrInvalidInput)
		}
	}
	return idx, nil
}

// quotedStart is the header as read, quoted (a stray "\r", other bytes
// than text show), cut after its first 200 bytes: the missing column's
// name alone did not say what the file's first line held instead.
func quotedStart(header []string) string {
	q := fmt.Sprintf("%q", header)
	if len(q) > 200 {
		return q[:200] + "…"
	}
	return q
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
	if len(id) > 1 && id[0] == '0' {
		// Ids are compared as written; a row id's text must then be its
		// value, or 7 and 007 would be one id to the repeat check and two
		// to the event ids derived from it.
		return fail("id", "%q is not a row id: a leading zero (ids are taken as written; write %s)", id, canonical(id))
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

// canonical is a row id without its leading zeros.
func canonical(id string) string {
	if t := strings.TrimLeft(id, "0"); t != "" {
		return t
	}
	return "0"
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
	// Written back the same too: Go's parser accepts fractional seconds
	// the layout does not have (2025-01-03 00:00:00.5), a run of spaces
	// for the layout's one and an hour without its zero
	// (2025-01-01  0:00:00).
	t, err := time.Parse(TimeLayout, s)
	if err != nil || t.Format(TimeLayout) != s {
		return t, errors.New("is not YYYY-MM-DD HH:MM:SS")
	}
	if err := domain.ValidateEventTime("", t); err != nil {
		// The bounds in whole seconds the layout can write, both inside.
		first, last := domain.MinTime.Truncate(time.Second).Add(time.Second), domain.MaxTime.Truncate(time.Second)
		return t, fmt.Errorf("is outside %s..%s, the times the log can hold", first.Format(TimeLayout), last.Format(TimeLayout))
	}
	return t, nil
}
