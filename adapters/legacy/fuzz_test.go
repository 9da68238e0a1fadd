package legacy_test

import (
	"encoding/csv"
	"errors"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/legacy"
	"github.com/interactionledger/ledger/domain"
)

// The forms a legacy row's fields must have (README "Importing the legacy
// soft-delete table", docs/api.md's ids), written here apart from the
// importer's own checks.
var (
	docRowID      = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
	docID         = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,128}$`)
	docTargetType = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)
	docTime       = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$`)
)

// FuzzParseRow feeds arbitrary data rows after a valid header. Input that
// is no CSV is refused whole as domain.ErrInvalidInput. Otherwise each
// record is rejected with its line exactly when the documented checks
// (docRowOK) refuse it, or, among several, for a repeated id or an
// overlap; a record that is taken becomes its steps, which give the row
// back field for field (format), and that row parses to the same steps.
func FuzzParseRow(f *testing.F) {
	for _, s := range []string{
		"1,u1,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"1,u1,like,article,a1,1,2025-01-02 00:00:00,2025-01-01 00:00:00",
		"x,u 1,share,Article,,2,not-a-date,",
		"1,u1,like",
		`"1","u1","like","article","a1","0","2025-01-01 00:00:00","2025-01-01 00:00:00"`,
		"007,u1,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"0,007,collect,a-b_1,..,1,2025-01-01 00:00:00,2025-01-01 00:00:01",
		"9223372036854775807,..,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"9223372036854775808,u1,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"2,u1,like,article,a1,1,1677-09-21 00:12:44,2262-04-11 23:47:16",
		"3,u1,like,article,a1,0,1677-09-21 00:12:43,2262-04-11 23:47:17",
		"4,u1,like,article,a1,0,2025-02-30 00:00:00,2025-01-01 00:00:00.5",
		"6,u1,collect,post,p:1@x,1,2025-01-01 00:00:01,2025-01-01 00:00:03",
		"8,u1,like,article,a1,1,2025-01-01 00:00:01,2025-01-01 00:00:00",
		"5,u1,like,article,a1,1,2025-01-01 00:00:00,2025-01-01 00:00:00\n5,u2,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
	} {
		f.Add(s)
	}
	header := strings.Join(legacy.Columns, ",") + "\n"
	f.Fuzz(func(t *testing.T, rows string) {
		recs, lines, csvErr := readCSV(header + rows)
		_, steps, bad, err := parse(t, strings.NewReader(header+rows), "legacy")
		if csvErr != nil || err != nil {
			if csvErr == nil || !errors.Is(err, domain.ErrInvalidInput) {
				t.Fatalf("%q: Parse %v, CSV %v: want both refused, as bad input", rows, err, csvErr)
			}
			return
		}
		checkRows(t, recs, lines, steps, bad)
		for i, rec := range recs {
			if own := stepsOf(steps, lines[i]); len(own) > 0 {
				checkRoundTrip(t, rec, own)
			}
		}
	})
}

// readCSV reads in's records after its header with encoding/csv alone,
// and the line each starts on.
func readCSV(in string) ([][]string, []int, error) {
	r := csv.NewReader(strings.NewReader(in))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil || len(recs) == 0 {
		return nil, nil, err
	}
	r = csv.NewReader(strings.NewReader(in))
	r.FieldsPerRecord = -1
	var lines []int
	for range recs {
		if _, err := r.Read(); err != nil {
			return nil, nil, err
		}
		line, _ := r.FieldPos(0)
		lines = append(lines, line)
	}
	return recs[1:], lines[1:], nil
}

// checkRows fails unless every record the documented checks refuse is
// rejected on its line, and every other is planned or, when the file has
// several, rejected for what only several rows can do.
func checkRows(t *testing.T, recs [][]string, lines []int, steps []legacy.Step, bad []legacy.RowError) {
	t.Helper()
	for i, rec := range recs {
		j := slices.IndexFunc(bad, func(b legacy.RowError) bool { return b.Line == lines[i] })
		planned := len(stepsOf(steps, lines[i])) > 0
		switch ok, why := docRowOK(rec); {
		case !ok && (j < 0 || planned):
			t.Fatalf("line %d %q: %s, but not rejected (planned %v)", lines[i], rec, why, planned)
		case ok && j < 0 && !planned:
			t.Fatalf("line %d %q: neither planned nor rejected", lines[i], rec)
		case ok && j >= 0 && (len(recs) == 1 || bad[j].Column != "id" && bad[j].Column != "created_at"):
			t.Fatalf("line %d %q: good, but rejected: %v", lines[i], rec, bad[j])
		}
	}
	if len(bad) > len(recs) {
		t.Fatalf("%d rows rejected of %d: %v", len(bad), len(recs), bad)
	}
}

// docRowOK checks one record as the README describes a good row, and
// says why not.
func docRowOK(rec []string) (bool, string) {
	if len(rec) != len(legacy.Columns) {
		return false, "field count"
	}
	id, user, kind, typ, tid, del, created, updated := rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7]
	if _, err := strconv.ParseInt(id, 10, 64); err != nil || !docRowID.MatchString(id) {
		return false, "row id"
	}
	dot := func(s string) bool { return s == "." || s == ".." }
	if !docID.MatchString(user) || dot(user) || !docTargetType.MatchString(typ) || !docID.MatchString(tid) || dot(tid) {
		return false, "user or target"
	}
	if kind != "like" && kind != "collect" || del != "0" && del != "1" {
		return false, "kind or is_deleted"
	}
	c, cok := docTimeOK(created)
	u, uok := docTimeOK(updated)
	if !cok || !uok || del == "1" && u.Before(c) {
		return false, "times"
	}
	return true, ""
}

// docTimeOK parses a row's time: YYYY-MM-DD HH:MM:SS, a real date, whose
// nanoseconds since 1970 fit in an int64 (the log's times).
func docTimeOK(s string) (time.Time, bool) {
	t, err := time.Parse(time.DateTime, s)
	sec := t.Unix()
	return t, err == nil && docTime.MatchString(s) && sec >= math.MinInt64/1_000_000_000 && sec <= math.MaxInt64/1_000_000_000
}

// stepsOf are the steps of the row on line.
func stepsOf(steps []legacy.Step, line int) []legacy.Step {
	return slices.DeleteFunc(slices.Clone(steps), func(s legacy.Step) bool { return s.Line != line })
}

// checkRoundTrip fails unless a row's steps are its add, and its cancel
// when deleted, with the event ids its id derives, and give the row back.
func checkRoundTrip(t *testing.T, rec []string, own []legacy.Step) {
	t.Helper()
	back := format(t, own, rec[7])
	if !slices.Equal(back, rec) {
		t.Fatalf("row %q planned as %q", rec, back)
	}
	for _, s := range own {
		typ := domain.EventAdded
		if !s.Command.On {
			typ = domain.EventCancelled
		}
		if s.Command.EventID != legacy.EventID("legacy", rec[0], typ, s.Command.OccurredAt) {
			t.Fatalf("row %q: step %+v has an event id not derived from its row id", rec, s.Command)
		}
	}
	_, again, bad, err := parse(t, strings.NewReader(strings.Join(legacy.Columns, ",")+"\n"+strings.Join(back, ",")), "legacy")
	if err != nil || len(bad) != 0 || len(again) != len(own) {
		t.Fatalf("row %q formatted back as %q: %v %v, %d steps, want %d", rec, back, err, bad, len(again), len(own))
	}
	for i := range again {
		if again[i].Command.EventID != own[i].Command.EventID || again[i].Command.Stream != own[i].Command.Stream {
			t.Fatalf("row %q formatted back parses to %+v, not %+v", rec, again[i].Command, own[i].Command)
		}
	}
}

// format writes a row's steps back as the row: updated is the cancel's
// time when there is one, else the row's own (no step holds it).
func format(t *testing.T, own []legacy.Step, updated string) []string {
	t.Helper()
	add := own[0].Command
	if !add.On || len(own) > 2 || len(own) == 2 && own[1].Command.On {
		t.Fatalf("steps %+v: want an add, then at most a cancel", own)
	}
	deleted := "0"
	if len(own) == 2 {
		deleted, updated = "1", own[1].Command.OccurredAt.Format(legacy.TimeLayout)
	}
	id, _ := add.Metadata.Get("legacy_id")
	return []string{id, add.Stream.User.String(), add.Kind.String(), add.Stream.Target.Type(), add.Stream.Target.ID(),
		deleted, add.OccurredAt.Format(legacy.TimeLayout), updated}
}
