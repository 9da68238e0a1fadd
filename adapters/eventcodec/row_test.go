package eventcodec_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

func validRow() eventcodec.Row {
	return eventcodec.Row{Position: 7, StreamKey: 3, Version: 2, Occurred: 1_700_000_000_123_000_000, Recorded: 1_700_000_001_000_000_000,
		ID: uuid.New(), Type: string(domain.EventCancelled), Kind: "like", Metadata: `{"src":"feed"}`,
		User: "u1", TargetType: "article", TargetID: "a1"}
}

// TestRowDecoderToggle: a row's toggle is its event's toggle, and a column
// the ledger does not write fails both with an error naming it.
func TestRowDecoderToggle(t *testing.T) {
	var dec eventcodec.RowDecoder
	r := validRow()
	e, err := dec.Decode(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dec.Toggle(&r)
	if err != nil {
		t.Fatal(err)
	}
	want := e.Toggle()
	if got.Stream != want.Stream || got.Kind != want.Kind || got.On || got.Position != 7 ||
		!got.OccurredAt.Equal(time.Unix(0, r.Occurred)) || got.Stream.Target.String() != "article/a1" {
		t.Fatalf("toggle %+v, want %+v (off, at 7)", got, want)
	}
	for _, c := range []struct {
		name string
		bad  func(*eventcodec.Row)
		want string
	}{
		{"type", func(r *eventcodec.Row) { r.Type = "interaction.bogus" }, "event 7: stored type"},
		{"kind", func(r *eventcodec.Row) { r.Kind = "Not A Kind" }, "event 7: stored kind"},
		{"user", func(r *eventcodec.Row) { r.User, r.StreamKey = "bad user", 4 }, "event 7: stored stream"},
		{"target", func(r *eventcodec.Row) { r.TargetID, r.StreamKey = "", 5 }, "event 7: stored stream"},
		{"metadata", func(r *eventcodec.Row) { r.Metadata = `{"":"x"}` }, "event 7: stored metadata"},
	} {
		r := validRow()
		c.bad(&r)
		if c.name != "metadata" { // a toggle has no metadata
			_, err := dec.Toggle(&r)
			checkStoredError(t, c.name+": Toggle", err, c.want)
		}
		_, err := dec.Decode(&r)
		checkStoredError(t, c.name+": Decode", err, c.want)
	}
}

// checkStoredError: a row that does not decode is the log's fault,
// ErrUnavailable naming the column, never ErrInvalidInput: a server
// answered the history export 400 invalid-input naming the column as a
// query parameter, and asof exited 2 as for a bad flag.
func checkStoredError(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, domain.ErrUnavailable) || errors.Is(err, domain.ErrInvalidInput) {
		t.Errorf("%s: %v, want ErrUnavailable naming %q, not invalid input", what, err, want)
	}
}
