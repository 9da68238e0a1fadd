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
		return domain.AppendRequest{Stream: stream, ExpectedVersion: 2, Events: []domain.Event{e}}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("a valid append: %v", err)
	}
	other := setReq(t, "u2", "article/a1", "like", true)
	cases := map[string]func(r *domain.AppendRequest){
		"NoStream":        func(r *domain.AppendRequest) { r.Stream = domain.StreamID{} },
		"NegativeVersion": func(r *domain.AppendRequest) { r.ExpectedVersion = -1 },
		"Idempotency":     func(r *domain.AppendRequest) { r.Idempotency = &domain.IdempotencyRecord{User: req.User} },
		"OtherStream":     func(r *domain.AppendRequest) { r.Events[0].User = other.User },
		"VersionGap":      func(r *domain.AppendRequest) { r.Events[0].StreamVersion = 4 },
		"NoID":            func(r *domain.AppendRequest) { r.Events[0].ID = uuid.Nil },
		"NoKind":          func(r *domain.AppendRequest) { r.Events[0].Kind = domain.Kind{} },
		"NoTime":          func(r *domain.AppendRequest) { r.Events[0].OccurredAt = time.Time{} },
		"BadType":         func(r *domain.AppendRequest) { r.Events[0].Type = "interaction.liked" },
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
