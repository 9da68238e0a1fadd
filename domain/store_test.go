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
