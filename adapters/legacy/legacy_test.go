package legacy_test

import (
	"context"
	"encoding/csv"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/adapters/legacy"
	"github.com/interactionledger/ledger/domain"
)

const samplePath = "testdata/legacy_user_actions.csv"

var kinds = domain.MustKindSet("like", "collect")

func TestParseSample(t *testing.T) {
	f, err := os.Open(samplePath)
	if err != nil {
		t.Fatalf("the sample export must be beside the project: %v", err)
	}
	defer f.Close()
	plan, steps, bad, err := parse(t, f, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	// The five rows the sample's README describes as inconsistent.
	want := map[int]string{137: "updated_at", 274: "action_type", 697: "user_id", 735: "target_id", 1125: "created_at"}
	if len(bad) != len(want) {
		t.Fatalf("rejected %d rows, want %d: %v", len(bad), len(want), bad)
	}
	for _, b := range bad {
		if want[b.Line] != b.Column {
			t.Errorf("rejected %v, want line %d only for %s", b, b.Line, want[b.Line])
		}
	}
	rows, deleted := countSample(t)
	if plan.Rows != rows {
		t.Errorf("Rows = %d, want %d", plan.Rows, rows)
	}
	if wantSteps := rows - len(bad) + deleted; len(steps) != wantSteps {
		t.Errorf("%d steps, want one per good row plus one per good deleted row = %d", len(steps), wantSteps)
	}
	for i := 1; i < len(steps); i++ {
		if steps[i].Command.OccurredAt.Before(steps[i-1].Command.OccurredAt) {
			t.Fatalf("step %d goes back in time", i)
		}
	}
}

// countSample counts data rows and the good deleted rows independently of
// the importer (the bad rows are the five lines checked above).
func countSample(t *testing.T) (rows, deletedGood int) {
	f, err := os.Open(samplePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	badLines := map[int]bool{137: true, 274: true, 697: true, 735: true, 1125: true}
	for i, r := range recs[1:] {
		if r[5] == "1" && !badLines[i+2] {
			deletedGood++
		}
	}
	return len(recs) - 1, deletedGood
}

func TestParseOrdersPairAndRejectsOverlap(t *testing.T) {
	in := strings.Join([]string{
		"id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at",
		"2,u1,like,article,a1,0,2025-01-03 00:00:00,2025-01-03 00:00:00",
		"1,u1,like,article,a1,1,2025-01-01 00:00:00,2025-01-02 00:00:00",
		"3,u1,like,article,a1,0,2025-01-04 00:00:00,2025-01-04 00:00:00",
		"4,u1,collect,article,a1,1,2025-01-01 00:00:00,2025-01-01 00:00:00",
	}, "\n")
	_, steps, bad, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].Line != 4 || !strings.Contains(bad[0].Reason, "overlaps line 2") {
		t.Fatalf("bad = %v, want line 4 overlapping line 2", bad)
	}
	var got []string
	for _, s := range steps {
		c := s.Command
		got = append(got, c.Kind.String()+map[bool]string{true: "+", false: "-"}[c.On]+c.OccurredAt.Format("02"))
	}
	if strings.Join(got, " ") != "like+01 collect+01 collect-01 like-02 like+03" {
		t.Errorf("steps %v", got)
	}
}

// TestParseTimesBeyondTheLog: a time the log cannot hold (int64
// nanoseconds: 1677..2262) is the row's error, not an overflowed event.
// A cancel and the pair's next add at the same time keep their order
// whatever lines the rows are on: the later row on an earlier line put its
// add between the first row's add and cancel, which then conflicted and
// left a cancelled like on.
func TestParsePairOrderAtOneTime(t *testing.T) {
	in := strings.Join([]string{
		"id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at",
		"20,u1,like,article,a1,1,2025-01-02 00:00:00,2025-01-03 00:00:00",
		"30,u1,like,article,a1,1,2025-01-01 10:00:00,2025-01-02 00:00:00",
		"40,u2,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
	}, "\n")
	plan, steps, bad, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil || len(bad) != 0 {
		t.Fatalf("%v %v", bad, err)
	}
	var u1 []string
	for _, s := range steps {
		if c := s.Command; c.Stream.User.String() == "u1" {
			u1 = append(u1, map[bool]string{true: "+", false: "-"}[c.On]+c.OccurredAt.Format("02"))
		}
	}
	if got := strings.Join(u1, " "); got != "+01 -02 +02 -03" {
		t.Fatalf("u1's steps %s, want +01 -02 +02 -03", got)
	}
	res, err := legacy.Apply(context.Background(), newRecorder(), plan, nil)
	if err != nil || res.Appended != 5 || res.Conflicts != 0 {
		t.Fatalf("%+v %v, want 5 events appended and no conflict", res, err)
	}
}

// Rows of one pair at one time (an active row and rows created and deleted
// in the same second) give the same plan in any line order: the active row
// first made the others "overlap".
func TestParsePairOrderIndependentOfLines(t *testing.T) {
	head := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at"
	rows := []string{
		"5,u1,like,article,t1,0,2025-01-01 10:00:00,2025-01-01 10:00:00",
		"3,u1,like,article,t1,1,2025-01-01 10:00:00,2025-01-01 10:00:00",
		"4,u1,like,article,t1,1,2025-01-01 10:00:00,2025-01-01 10:00:00",
	}
	var plans []string
	for _, order := range [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}} {
		lines := []string{head}
		for _, i := range order {
			lines = append(lines, rows[i])
		}
		_, steps, bad, err := parse(t, strings.NewReader(strings.Join(lines, "\n")), "legacy")
		if err != nil || len(bad) != 0 {
			t.Fatalf("order %v: %v %v", order, bad, err)
		}
		var got []string
		for _, s := range steps {
			got = append(got, map[bool]string{true: "+", false: "-"}[s.Command.On])
		}
		plans = append(plans, strings.Join(got, ""))
	}
	if plans[0] != "+-+-+" || plans[1] != plans[0] || plans[2] != plans[0] {
		t.Fatalf("plans %v, want +-+-+ in every line order", plans)
	}
}

func TestParseTimesBeyondTheLog(t *testing.T) {
	in := strings.Join([]string{
		"id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at",
		"1,u1,like,article,a1,0,3000-01-01 00:00:00,3000-01-01 00:00:00",
		"2,u2,like,article,a1,1,2025-01-01 00:00:00,2263-01-01 00:00:00",
		"3,u3,like,article,a1,0,1500-01-01 00:00:00,1500-01-01 00:00:00",
		"4,u4,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
	}, "\n")
	_, steps, bad, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{2: "created_at", 3: "updated_at", 4: "created_at"}
	for _, b := range bad {
		if want[b.Line] != b.Column || !strings.Contains(b.Reason, "outside") {
			t.Errorf("line %d: %s %q", b.Line, b.Column, b.Reason)
		}
		delete(want, b.Line)
	}
	if len(want) != 0 || len(steps) != 1 {
		t.Errorf("rows not reported: %v; steps %d, want 1", want, len(steps))
	}
}

// TestParseStrictForms: fractional seconds (which Go's parser takes beyond
// the layout), a column named twice and broken CSV quoting are bad input,
// the first of a row, the others of the file.
func TestParseStrictForms(t *testing.T) {
	head := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at"
	_, steps, bad, err := parse(t, strings.NewReader(head+"\n1,u1,like,article,a1,1,2025-01-02 00:00:00,2025-01-03 00:00:00.5\n"), "legacy")
	if err != nil || len(bad) != 1 || bad[0].Column != "updated_at" || len(steps) != 0 {
		t.Errorf("fractional seconds: %v %v %v", steps, bad, err)
	}
	for name, in := range map[string]string{
		"RepeatedColumn": head + ",id\n1,u1,like,article,a1,0,2025-01-02 00:00:00,2025-01-02 00:00:00,1\n",
		"BrokenQuoting":  head + "\n1,u1,like,article,\"a1,0,2025-01-02 00:00:00,2025-01-02 00:00:00\n",
	} {
		if _, _, _, err := parse(t, strings.NewReader(in), "legacy"); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: %v, want ErrInvalidInput", name, err)
		}
	}
}

// TestParseDotSegments: user and target ids "." and ".." match the id form
// but no URL path can carry them: each is its row's error.
func TestParseDotSegments(t *testing.T) {
	in := strings.Join([]string{
		"id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at",
		"1,..,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"2,u2,like,article,.,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"3,u.3,like,article,..a,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
	}, "\n")
	_, steps, bad, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{2: "user_id", 3: "target_id"}
	for _, b := range bad {
		if want[b.Line] != b.Column || !strings.Contains(b.Reason, "dot segment") {
			t.Errorf("line %d: %s %q", b.Line, b.Column, b.Reason)
		}
		delete(want, b.Line)
	}
	if len(want) != 0 || len(steps) != 1 {
		t.Errorf("rows not reported: %v; steps %d, want 1", want, len(steps))
	}
}

func TestParseBadFile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"missing column": "id,user_id\n1,u1\n",
		"broken quoting": "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n\"1,u1\n",
	} {
		if _, _, _, err := parse(t, strings.NewReader(in), "legacy"); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
}

func TestEventIDIsStableAndTimeOrdered(t *testing.T) {
	t0 := mustTime(t, "2025-01-01 00:00:00")
	t1 := mustTime(t, "2025-01-02 00:00:00")
	a := legacy.EventID("legacy", "7", domain.EventAdded, t0)
	if a != legacy.EventID("legacy", "7", domain.EventAdded, t0) {
		t.Fatal("same row, different ids")
	}
	if a.Version() != 7 || a.Variant() != uuid.RFC4122 {
		t.Errorf("id %s is not a v7 UUID", a)
	}
	c := legacy.EventID("legacy", "7", domain.EventCancelled, t1)
	if a == c || a == legacy.EventID("other", "7", domain.EventAdded, t0) {
		t.Error("type and source must change the id")
	}
	if strings.Compare(a.String(), c.String()) >= 0 {
		t.Error("a later event must sort after an earlier one")
	}
}

// recorder imports as domain.Ledger does: an id once, and an event only
// at the version its history expects.
type recorder struct {
	seen     map[uuid.UUID]bool
	version  map[domain.StreamID]int64
	onImport func(domain.Command) // when not nil, called with each command imported
}

func newRecorder() *recorder {
	return &recorder{seen: map[uuid.UUID]bool{}, version: map[domain.StreamID]int64{}}
}

func (r *recorder) Import(_ context.Context, c domain.Command, after int64) (domain.ImportResult, error) {
	switch {
	case r.seen[c.EventID]:
		return domain.AlreadyImported, nil
	case r.version[c.Stream] != after:
		return domain.ImportConflict, nil
	}
	r.seen[c.EventID] = true
	r.version[c.Stream]++
	if r.onImport != nil {
		r.onImport(c)
	}
	return domain.Imported, nil
}

// TestApplyReportsConflicts: a pair whose stream holds an event the file
// did not write (a live like) is reported, every one of its events, and
// nothing of it is imported; the other pairs are. The same over a
// QueueImporter, whose queued imports are decided only when waited for:
// a stream's later step queued behind its conflict found the stream at
// the version it expects, and its cancel undid the live like.
func TestApplyReportsConflicts(t *testing.T) {
	in := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n" +
		"77,u9,like,article,q9,1,2025-01-01 00:00:00,2025-01-02 00:00:00\n" +
		"78,u9,collect,article,q9,0,2025-01-03 00:00:00,2025-01-03 00:00:00\n" +
		"79,u1,like,article,q9,0,2025-01-01 00:00:00,2025-01-01 00:00:00\n"
	plan, _, _, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	user, err := domain.NewUserID("u9")
	if err != nil {
		t.Fatal(err)
	}
	target, err := domain.ParseTarget("article/q9")
	if err != nil {
		t.Fatal(err)
	}
	live := domain.StreamID{User: user, Target: target}
	for name, imp := range map[string]func(*recorder) legacy.Importer{
		"Import":      func(r *recorder) legacy.Importer { return r },
		"QueueImport": func(r *recorder) legacy.Importer { return &lazyQueue{recorder: r} },
	} {
		r := newRecorder()
		r.version[live] = 1
		res, err := legacy.Apply(context.Background(), imp(r), plan, nil)
		if err != nil || res.Appended != 1 || res.Conflicts != 3 {
			t.Fatalf("%s: %+v %v, want u1's like appended and u9's 3 events in conflict", name, res, err)
		}
		var lines []int
		err = plan.Conflicts(context.Background(), func(c legacy.RowError) error {
			lines = append(lines, c.Line)
			return nil
		})
		if err != nil || !slices.Equal(lines, []int{2, 2, 3}) {
			t.Errorf("%s: conflicts on lines %v (%v), want 2, 2 and 3: lines 2 and 3 only", name, lines, err)
		}
		if r.version[live] != 1 {
			t.Errorf("%s: u9's stream at version %d, want 1: nothing of the file", name, r.version[live])
		}
	}
}

// lazyQueue queues imports and decides them, in the order queued, only
// when one is waited for, as a store's writer may; one that follows a
// conflict is one too, as the store refuses it (domain.Ledger.QueueImport).
type lazyQueue struct {
	*recorder
	queued  []func()
	maxHeld int // the most imports queued at once
}

func (q *lazyQueue) QueueImport(ctx context.Context, c domain.Command, after int64, follows domain.QueuedImport) (domain.QueuedImport, error) {
	l := &lazyImport{q: q}
	prev, _ := follows.(*lazyImport)
	q.queued = append(q.queued, func() {
		if prev != nil && prev.r == domain.ImportConflict {
			l.r = domain.ImportConflict
			return
		}
		l.r, l.err = q.Import(ctx, c, after)
	})
	q.maxHeld = max(q.maxHeld, len(q.queued))
	return l, nil
}

// lazyImport is an import lazyQueue queued.
type lazyImport struct {
	q   *lazyQueue
	r   domain.ImportResult
	err error
}

func (l *lazyImport) Wait() (domain.ImportResult, error) {
	for _, f := range l.q.queued {
		f()
	}
	l.q.queued = nil
	return l.r, l.err
}

// TestApplyQueuesAhead: over a QueueImporter, the steps are queued
// without waiting for the ones before, a stream's cancel behind its add
// too, and appended in the plan's order, with the plan's results.
func TestApplyQueuesAhead(t *testing.T) {
	in := manyRows(300) // 300 streams, each added and cancelled
	plan, steps, _, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	var order []uuid.UUID
	q := &lazyQueue{recorder: newRecorder()}
	q.recorder.onImport = func(c domain.Command) { order = append(order, c.EventID) }
	var last int
	res, err := legacy.Apply(context.Background(), q, plan, func(n int) { last = n })
	if err != nil || res.Appended != 600 || last != 600 {
		t.Fatalf("%+v %v progress %d, want 600 events appended", res, err, last)
	}
	if q.maxHeld < 600 {
		t.Errorf("at most %d imports queued at once, want all 600", q.maxHeld)
	}
	for i, s := range steps {
		if order[i] != s.Command.EventID {
			t.Fatalf("import %d is %s, want the plan's step %d (%s)", i, order[i], i, s.Command.EventID)
		}
	}
}

func TestApplyCountsExisting(t *testing.T) {
	in := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n" +
		"1,u1,like,article,a1,1,2025-01-01 00:00:00,2025-01-02 00:00:00\n"
	plan, _, _, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	r := newRecorder()
	var last int
	res, err := legacy.Apply(context.Background(), r, plan, func(n int) { last = n })
	if err != nil || res.Appended != 2 || res.Existing != 0 || last != 2 {
		t.Fatalf("first run %+v %v progress %d", res, err, last)
	}
	res, err = legacy.Apply(context.Background(), r, plan, nil)
	if err != nil || res.Appended != 0 || res.Existing != 2 {
		t.Fatalf("re-run %+v %v, want everything existing", res, err)
	}
}

// TestApplyGivesEachEventItsRowsMetadata: every imported event carries
// the source and its row's id (the plan keeps them apart from its
// commands, which Apply completes one at a time).
func TestApplyGivesEachEventItsRowsMetadata(t *testing.T) {
	in := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n" +
		"7,u1,like,article,a1,1,2025-01-01 00:00:00,2025-01-02 00:00:00\n" +
		"8,u2,collect,article,a1,0,2025-01-03 00:00:00,2025-01-03 00:00:00\n"
	plan, _, _, err := parse(t, strings.NewReader(in), "crm")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	imp := importFunc(func(c domain.Command) {
		src, _ := c.Metadata.Get("source")
		id, _ := c.Metadata.Get("legacy_id")
		got = append(got, src+":"+id)
	})
	if _, err := legacy.Apply(context.Background(), imp, plan, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "crm:7 crm:7 crm:8" {
		t.Fatalf("metadata of the imported events %v, want crm:7 crm:7 crm:8", got)
	}
}

// importFunc imports every command, handing it to f.
type importFunc func(domain.Command)

func (f importFunc) Import(_ context.Context, c domain.Command, _ int64) (domain.ImportResult, error) {
	f(c)
	return domain.Imported, nil
}

// parse parses in and reads the plan back: its steps and rejected rows.
// The plan is closed when the test ends.
func parse(t *testing.T, in io.Reader, source string) (*legacy.Plan, []legacy.Step, []legacy.RowError, error) {
	t.Helper()
	ctx := context.Background()
	plan, err := legacy.Parse(ctx, in, kinds, source)
	if err != nil {
		return nil, nil, nil, err
	}
	t.Cleanup(func() {
		if err := plan.Close(); err != nil {
			t.Error(err)
		}
	})
	var steps []legacy.Step
	var bad []legacy.RowError
	err = plan.Each(ctx, func(s legacy.Step) error {
		steps = append(steps, s)
		return nil
	})
	if err == nil {
		err = plan.Errors(ctx, func(e legacy.RowError) error {
			bad = append(bad, e)
			return nil
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	if plan.Steps != len(steps) || plan.Rejected != len(bad) {
		t.Fatalf("plan counts %d steps and %d rejected rows, lists %d and %d", plan.Steps, plan.Rejected, len(steps), len(bad))
	}
	return plan, steps, bad, nil
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(legacy.TimeLayout, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestParseRepeatedIDsBOMAndEmpty: a row id repeated is the
// later row's error, not a row taken for the first one and dropped as
// already imported; a UTF-8 byte order mark before the header is not part
// of its first name; an empty file is bad input.
func TestParseRepeatedIDsBOMAndEmpty(t *testing.T) {
	in := "\ufeff" + strings.Join([]string{
		"id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at",
		"1,u1,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"1,u2,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"1,u3,like,article,a1,0,2025-01-02 00:00:00,2025-01-02 00:00:00",
		"2,u4,like,article,a1,0,2025-01-02 00:00:00,2025-01-02 00:00:00",
	}, "\n")
	_, steps, bad, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 2 || bad[0].Line != 3 || bad[1].Line != 4 || bad[0].Column != "id" || !strings.Contains(bad[1].Reason, "line 2") {
		t.Fatalf("bad = %+v, want lines 3 and 4 repeating line 2's id", bad)
	}
	if len(steps) != 2 {
		t.Fatalf("steps %d, want 2 (ids 1 and 2)", len(steps))
	}
	if _, _, _, err := parse(t, strings.NewReader(""), "legacy"); !errors.Is(err, domain.ErrInvalidInput) {
		t.Fatalf("empty file: %v, want ErrInvalidInput", err)
	}
}

// TestParseIDsAsWritten: every id of a row is its text as written, the
// one rule of the README's import section. A user id and a target id are
// the ledger's ids, text: 7 and 007 are two users, two targets, as they
// are to the API. A row id is a number, which the importer compares (a
// repeat) and derives event ids from: written with a leading zero (007),
// its text would not be its value (7 and 007 were one id to the repeat
// check, two to the event ids), so it is refused; 0 is an id.
func TestParseIDsAsWritten(t *testing.T) {
	in := strings.Join([]string{
		"id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at",
		"0,7,like,article,7,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"1,007,like,article,7,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"2,7,like,article,007,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"007,u1,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"00,u2,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
		"7,u3,like,article,a1,0,2025-01-01 00:00:00,2025-01-01 00:00:00",
	}, "\n")
	_, steps, bad, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 2 || bad[0].Line != 5 || bad[1].Line != 6 || bad[0].Column != "id" || bad[1].Column != "id" ||
		!strings.Contains(bad[0].Reason, "leading zero") || !strings.HasSuffix(bad[1].Reason, "write 0)") {
		t.Fatalf("bad = %+v, want lines 5 and 6 (007, 00) refused for their leading zero", bad)
	}
	streams := map[string]int{}
	for _, s := range steps {
		streams[s.Command.Stream.User.String()+" "+s.Command.Stream.Target.String()] = s.Line
	}
	want := map[string]int{"7 article/7": 2, "007 article/7": 3, "7 article/007": 4, "u3 article/a1": 7}
	if !maps.Equal(streams, want) {
		t.Fatalf("streams by line %v, want %v: user and target ids as written", streams, want)
	}
}

// TestApplyInterruptedAfterAConflict: an Apply whose ctx ends after it
// found a conflict stops with ctx's error, not a failure of the scratch
// database (its conflict lookups ran with the ended ctx: "interrupted,
// stopped before the end: scratch database: context canceled"), and
// lists the conflict it counted.
func TestApplyInterruptedAfterAConflict(t *testing.T) {
	in := "id,user_id,action_type,target_type,target_id,is_deleted,created_at,updated_at\n" +
		"77,u9,like,article,q9,0,2025-01-01 00:00:00,2025-01-01 00:00:00\n" +
		"78,u1,like,article,q9,0,2025-01-02 00:00:00,2025-01-02 00:00:00\n" +
		"79,u2,like,article,q9,0,2025-01-03 00:00:00,2025-01-03 00:00:00\n"
	plan, _, _, err := parse(t, strings.NewReader(in), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	live := domain.StreamID{User: mustUserID(t, "u9"), Target: mustTargetOf(t, "article/q9")}
	r := newRecorder()
	r.version[live] = 1
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	res, err := legacy.Apply(ctx, r, plan, func(int) { cancel() }) // Ctrl-C after the first step, the conflict
	if !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "scratch database") || res.Conflicts != 1 {
		t.Fatalf("Apply interrupted after a conflict: %+v %v, want context.Canceled and the conflict counted", res, err)
	}
	var lines []int
	err = plan.Conflicts(t.Context(), func(c legacy.RowError) error {
		lines = append(lines, c.Line)
		return nil
	})
	if err != nil || !slices.Equal(lines, []int{2}) {
		t.Errorf("conflicts on lines %v (%v), want line 2", lines, err)
	}
}

func mustUserID(t *testing.T, s string) domain.UserID {
	u, err := domain.NewUserID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustTargetOf(t *testing.T, s string) domain.Target {
	tg, err := domain.ParseTarget(s)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}
