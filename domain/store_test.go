package domain_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/interactionledger/ledger/domain"
)

func TestAppendRequestValidate(t *testing.T) {
	req := setReq(t, "u1", "article/a1", "like", true)
	stream := domain.StreamID{User: req.User, Target: req.Target}
	valid := func() domain.AppendRequest {
		e := domain.Decide(domain.State{}, 2, domain.Command{Stream: stream, Kind: req.Kind, On: true, OccurredAt: time.Now()})[0]
		return domain.AppendRequest{Stream: stream, ExpectedVersion: 2, Events: []domain.Event{e}, State: domain.Evolve(domain.State{}, e)}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("a valid append: %v", err)
	}
	other := setReq(t, "u2", "article/a1", "like", true)
	cases := map[string]func(r *domain.AppendRequest){
		"NoStream":         func(r *domain.AppendRequest) { r.Stream = domain.StreamID{} },
		"NegativeVersion":  func(r *domain.AppendRequest) { r.ExpectedVersion = -1 },
		"Idempotency":      func(r *domain.AppendRequest) { r.Idempotency = &domain.IdempotencyRecord{User: req.User} },
		"OtherStream":      func(r *domain.AppendRequest) { r.Events[0].User = other.User },
		"VersionGap":       func(r *domain.AppendRequest) { r.Events[0].StreamVersion = 4 },
		"NoID":             func(r *domain.AppendRequest) { r.Events[0].ID = uuid.Nil },
		"NoKind":           func(r *domain.AppendRequest) { r.Events[0].Kind = domain.Kind{} },
		"NoTime":           func(r *domain.AppendRequest) { r.Events[0].OccurredAt = time.Time{} },
		"BadType":          func(r *domain.AppendRequest) { r.Events[0].Type = "interaction.liked" },
		"TimeAfter2262":    func(r *domain.AppendRequest) { r.Events[0].OccurredAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"TimeAtMax":        func(r *domain.AppendRequest) { r.Events[0].OccurredAt = domain.MaxTime },
		"TimeBefore1677":   func(r *domain.AppendRequest) { r.Events[0].OccurredAt = time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC) },
		"StateContradicts": func(r *domain.AppendRequest) { r.State = domain.State{} },
	}
	for name, spoil := range cases {
		t.Run(name, func(t *testing.T) {
			r := valid()
			spoil(&r)
			var v *domain.ValidationError
			if err := r.Validate(); !errors.As(err, &v) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
		})
	}
}

// Emitting yields what run emits, then run's error named by op; a consumer
// that stops early stops run and sees no error.
func TestEmitting(t *testing.T) {
	boom := errors.New("boom")
	run := func(emit func(domain.Toggle) bool) error {
		for p := range int64(3) {
			if !emit(domain.Toggle{Position: p + 1}) {
				return nil
			}
		}
		return boom
	}
	var got []int64
	var last error
	for tg, err := range domain.Emitting("read latest", run) {
		if err != nil {
			last = err
			break
		}
		got = append(got, tg.Position)
	}
	if len(got) != 3 || !errors.Is(last, boom) || last.Error() != "read latest: boom" {
		t.Fatalf("got %v, then %v; want 1 2 3, then read latest: boom", got, last)
	}
	n := 0
	for range domain.Emitting("read latest", run) {
		n++
		break
	}
	if n != 1 {
		t.Fatalf("stopping early: %d yields, want 1", n)
	}
}

// Event times at the ends of what the log holds are valid; TimeBounds
// clamps bounds beyond them and checks their order.
func TestEventTimes(t *testing.T) {
	for _, ok := range []time.Time{domain.MinTime, domain.MaxTime.Add(-1), time.Unix(0, 0)} {
		if err := domain.ValidateEventTime("t", ok); err != nil {
			t.Errorf("ValidateEventTime(%s) = %v", ok, err)
		}
	}
	at := func(year int) *time.Time { t := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC); return &t }
	cases := []struct {
		name         string
		since, until *time.Time
		s, u         time.Time
	}{
		{"None", nil, nil, time.Time{}, time.Time{}},
		{"Inside", at(2000), at(2001), *at(2000), *at(2001)},
		{"Beyond", at(2000), at(3000), *at(2000), domain.MaxTime},
		{"BothBeyond", at(2500), at(3000), domain.MaxTime, domain.MaxTime},
		{"Before", at(1000), nil, domain.MinTime, time.Time{}},
		{"UntilYearOne", nil, &time.Time{}, time.Time{}, domain.MinTime},
	}
	for _, c := range cases {
		s, u, err := domain.TimeBounds(c.since, c.until)
		if err != nil || !s.Equal(c.s) || !u.Equal(c.u) || s.IsZero() != c.s.IsZero() || u.IsZero() != c.u.IsZero() {
			t.Errorf("%s: TimeBounds = %s, %s, %v; want %s, %s", c.name, s, u, err, c.s, c.u)
		}
	}
	var v *domain.ValidationError
	if _, _, err := domain.TimeBounds(at(2001), at(2000)); !errors.As(err, &v) || v.Field != "until" {
		t.Errorf("until before since: %v, want a *ValidationError of until", err)
	}
}
