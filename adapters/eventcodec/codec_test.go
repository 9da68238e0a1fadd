package eventcodec_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

func sampleEvent(t testing.TB) domain.Event {
	t.Helper()
	k, _ := domain.ParseKind("like")
	u, _ := domain.NewUserID("u42")
	tg, _ := domain.NewTarget("article", "a-1")
	return domain.Event{
		ID: domain.NewEventID(), Type: domain.EventCancelled, Kind: k, User: u, Target: tg,
		StreamVersion: 4, Position: 1234,
		OccurredAt: time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC),
		RecordedAt: time.Date(2026, 11, 22, 10, 0, 0, 124e6, time.UTC),
		Metadata:   domain.MustMetadata(map[string]string{"source": "web"}),
	}
}

func TestJSONRoundTrip(t *testing.T) {
	e := sampleEvent(t)
	b := eventcodec.MarshalEvent(e)
	for _, want := range []string{`"position":1234`, `"type":"interaction.cancelled"`,
		`"target":{"type":"article","id":"a-1"}`, `"occurred_at":"2026-11-22T10:00:00.123Z"`,
		`"recorded_at":"2026-11-22T10:00:00.124Z"`, `"metadata":{"source":"web"}`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	got, err := eventcodec.UnmarshalEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Position != e.Position || got.Target != e.Target || got.User != e.User ||
		got.Kind != e.Kind || got.Type != e.Type || !got.OccurredAt.Equal(e.OccurredAt) ||
		!got.RecordedAt.Equal(e.RecordedAt) || !got.Metadata.Equal(e.Metadata) {
		t.Errorf("round trip: got %+v, want %+v", got, e)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := string(eventcodec.MarshalEvent(sampleEvent(t)))
	for name, in := range map[string]string{
		"unknown field": strings.Replace(good, `"kind"`, `"extra":1,"kind"`, 1),
		"bad type":      strings.Replace(good, "interaction.cancelled", "interaction.deleted", 1),
		"bad user":      strings.Replace(good, `"u42"`, `"u 42"`, 1),
		"bad id":        strings.Replace(good, `"id":"`, `"id":"x`, 1),
		"trailing":      good + "{}",
		"not json":      "nope",
		"zero version":  strings.Replace(good, `"stream_version":4`, `"stream_version":0`, 1),
		// Times no event of the log can hold (1677..2262), a missing one
		// read as year 1 among them: they were taken as they came.
		"no occurred_at":      strings.Replace(good, `"occurred_at":"2026-11-22T10:00:00.123Z",`, "", 1),
		"no recorded_at":      strings.Replace(good, `,"recorded_at":"2026-11-22T10:00:00.124Z"`, "", 1),
		"occurred_at in 9999": strings.Replace(good, `"occurred_at":"2026`, `"occurred_at":"9999`, 1),
		"recorded_at in 1600": strings.Replace(good, `"recorded_at":"2026`, `"recorded_at":"1600`, 1),
	} {
		if _, err := eventcodec.UnmarshalEvent([]byte(in)); !errors.Is(err, domain.ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", name, err)
		}
	}
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	w := eventcodec.NewCSVWriter(&buf)
	e := sampleEvent(t)
	e.Metadata = domain.MustMetadata(map[string]string{"source": "web", "note": `a "quoted", text`})
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || strings.Join(recs[0], ",") != strings.Join(eventcodec.CSVHeader, ",") {
		t.Fatalf("records %q", recs)
	}
	if recs[1][0] != "1234" || recs[1][5] != "article" || recs[1][6] != "a-1" || !strings.Contains(recs[1][10], `quoted`) {
		t.Errorf("row %q", recs[1])
	}
	var empty bytes.Buffer
	if err := eventcodec.NewCSVWriter(&empty).Flush(); err != nil || strings.Count(empty.String(), "\n") != 1 {
		t.Errorf("an empty export must still have its header: %q %v", empty.String(), err)
	}
}

// TestCSVNeutralisesFormulas: a cell a spreadsheet would run as a formula
// (OWASP CSV injection) starts with a single quote; other cells are as
// they were.
func TestCSVNeutralisesFormulas(t *testing.T) {
	e := sampleEvent(t)
	u, _ := domain.NewUserID("@SUM")
	tg, _ := domain.NewTarget("article", "-2")
	e.User, e.Target = u, tg
	e.Metadata = domain.MustMetadata(map[string]string{"note": "=cmd|' /C calc'!A0"})
	var buf bytes.Buffer
	w := eventcodec.NewCSVWriter(&buf)
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("records %q %v", recs, err)
	}
	row := recs[1]
	if row[4] != "'@SUM" || row[6] != "'-2" || row[5] != "article" || row[0] != "1234" {
		t.Errorf("row %q", row)
	}
	if !strings.HasPrefix(row[10], "{") {
		t.Errorf("metadata cell %q", row[10])
	}
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx", "\rx": "'\rx",
		"a=1": "a=1", "": "", "'x": "'x", "{\"a\":\"=1\"}": "{\"a\":\"=1\"}",
	} {
		if got := eventcodec.NeutraliseCell(in); got != want {
			t.Errorf("NeutraliseCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzUnmarshalEvent checks that decoding never panics, that a refusal
// wraps ErrInvalidInput, and that whatever decodes re-encodes to an event
// that decodes the same and encodes to the same bytes.
func FuzzUnmarshalEvent(f *testing.F) {
	f.Add(eventcodec.MarshalEvent(sampleEvent(f)))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"position":-1}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := eventcodec.UnmarshalEvent(b)
		if err != nil {
			if !errors.Is(err, domain.ErrInvalidInput) {
				t.Fatalf("error %v does not wrap ErrInvalidInput", err)
			}
			return
		}
		again, err := eventcodec.UnmarshalEvent(eventcodec.MarshalEvent(e))
		if err != nil || again.ID != e.ID || again.Target != e.Target || again.Position != e.Position {
			t.Fatalf("re-decode: %+v %v", again, err)
		}
		if b1, b2 := eventcodec.MarshalEvent(e), eventcodec.MarshalEvent(again); !bytes.Equal(b1, b2) {
			t.Fatalf("%s decodes to an event encoded %s, which re-decodes to one encoded %s", b, b1, b2)
		}
	})
}

// BenchmarkCSVWrite is the cost of one export row (the formula check runs
// on every cell).
func BenchmarkCSVWrite(b *testing.B) {
	e := sampleEvent(b)
	w := eventcodec.NewCSVWriter(io.Discard)
	for b.Loop() {
		if err := w.Write(e); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
}
