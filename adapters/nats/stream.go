package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/google/uuid"
	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrStreamMismatch is returned by Run when the stream cannot be the
// relay's copy of this log: other subjects, a last message the relay did
// not write, or an event the log does not hold at that position (another
// --db, another stream). It is also why a running relay stops when the log
// moves back under it (an older copy restored), since the stream then holds
// events the log no longer does. Retrying cannot fix it, so Run stops.
var ErrStreamMismatch = errors.New("stream does not match the log")

// resumePoint is where a session continues: after the event at Position,
// whose message is the stream's last, at Sequence (both 0 when empty).
type resumePoint struct {
	Position int64
	ID       uuid.UUID // the event's id at Position (zero when Position is)
	Sequence uint64
}

// ensureStream opens the stream, creating it when absent, and checks that
// it takes the relay's subjects.
func (r *Relay) ensureStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	subjects := r.cfg.SubjectPrefix + ".>"
	s, err := js.Stream(ctx, r.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: r.cfg.Stream, Description: "interaction events relayed from the ledger's log",
			Subjects: []string{subjects}, Storage: jetstream.FileStorage, Replicas: r.cfg.Replicas,
		})
		if err == nil {
			r.log.InfoContext(ctx, "stream created", "subjects", subjects, "replicas", r.cfg.Replicas)
		}
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // created by someone else meanwhile
			s, err = js.Stream(ctx, r.cfg.Stream)
		}
	}
	if err != nil {
		return nil, refusal(fmt.Errorf("stream %s: %w", r.cfg.Stream, err))
	}
	if got := s.CachedInfo().Config.Subjects; !slices.Equal(got, []string{subjects}) {
		return nil, permanent(fmt.Errorf("stream %s has subjects %v, want only %q: %w", r.cfg.Stream, got, subjects, ErrStreamMismatch))
	}
	if err := keepsLastMessage(s.CachedInfo().Config); err != nil {
		return nil, permanent(fmt.Errorf("stream %s %w, and the relay resumes after it: delete the stream or keep its messages: %w",
			r.cfg.Stream, err, ErrStreamMismatch))
	}
	if err := takesNewMessages(s.CachedInfo().Config); err != nil {
		return nil, permanent(fmt.Errorf("stream %s %w, and the relay would retry the next event for ever: "+
			"delete the stream or set its discard policy to old: %w", r.cfg.Stream, err, ErrStreamMismatch))
	}
	return s, nil
}

// takesNewMessages says which setting of a stream refuses new messages
// once a limit is reached (the discard policy new). Found at the first
// start, such a stream is refused at once rather than stall the relay
// when it fills. With the policy old, the same limits drop the oldest
// messages instead.
func takesNewMessages(c jetstream.StreamConfig) error {
	if c.Discard != jetstream.DiscardNew {
		return nil
	}
	const refuses = "discards new messages once it holds"
	switch {
	case c.MaxMsgs > 0:
		return fmt.Errorf("%s %d messages", refuses, c.MaxMsgs)
	case c.MaxBytes > 0:
		return fmt.Errorf("%s %d bytes", refuses, c.MaxBytes)
	case c.DiscardNewPerSubject && c.MaxMsgsPerSubject > 0:
		return fmt.Errorf("%s %d messages per subject", refuses, c.MaxMsgsPerSubject)
	}
	return nil
}

// keepsLastMessage says which setting of a stream may remove its last
// message. Found at the first start, such a stream is refused at once; else
// a relay that restarts months later, its resume point gone, would refuse
// it then. Limits on counts and bytes discard the oldest messages, never
// the last.
func keepsLastMessage(c jetstream.StreamConfig) error {
	if c.Retention != jetstream.LimitsPolicy {
		return fmt.Errorf("has %s retention, which removes messages once consumed (or at once when nothing consumes it), the last one too", c.Retention)
	}
	if c.MaxAge > 0 {
		return fmt.Errorf("has a max age of %s, which removes the last message once the log is idle that long", c.MaxAge)
	}
	return nil
}

// resume reads the stream's last message and checks that it is of this log
// (its Ledger-Log; a message of an older build has none) and that the log
// holds the same event at its position.
func (r *Relay) resume(ctx context.Context, s jetstream.Stream) (resumePoint, error) {
	info, err := s.Info(ctx)
	if err != nil {
		return resumePoint{}, fmt.Errorf("stream %s info: %w", r.cfg.Stream, err)
	}
	last := info.State.LastSeq
	if last == 0 {
		return resumePoint{}, nil
	}
	msg, err := s.GetMsg(ctx, last)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return resumePoint{}, permanent(fmt.Errorf("stream %s: its last message (sequence %d) is gone (limits or a deletion), so where to resume is unknown: %w",
			r.cfg.Stream, last, ErrStreamMismatch))
	}
	if err != nil {
		return resumePoint{}, fmt.Errorf("stream %s: read message %d: %w", r.cfg.Stream, last, err)
	}
	pos, err := strconv.ParseInt(msg.Header.Get(HeaderPosition), 10, 64)
	if err != nil || pos < 1 {
		return resumePoint{}, permanent(fmt.Errorf("stream %s: last message %d (%s) has %s %q, not a relayed event: %w",
			r.cfg.Stream, last, msg.Subject, HeaderPosition, msg.Header.Get(HeaderPosition), ErrStreamMismatch))
	}
	id, err := uuid.Parse(msg.Header.Get(natsgo.MsgIdHdr))
	if err != nil {
		return resumePoint{}, permanent(fmt.Errorf("stream %s: last message %d (%s) has %s %q, not an event id: %w",
			r.cfg.Stream, last, msg.Subject, natsgo.MsgIdHdr, msg.Header.Get(natsgo.MsgIdHdr), ErrStreamMismatch))
	}
	if log := msg.Header.Get(HeaderLog); log != "" && domain.LogIDOf(r.store) != "" && log != domain.LogIDOf(r.store) {
		return resumePoint{}, permanent(fmt.Errorf("stream %s: last message %d is an event of log %s, and this log is %s "+
			"(another database? a log of the same events, imported anew, is another log): %w",
			r.cfg.Stream, last, log, domain.LogIDOf(r.store), ErrStreamMismatch))
	}
	if err := r.checkLogHas(ctx, pos, id, "another database?"); err != nil {
		return resumePoint{}, err
	}
	return resumePoint{Position: pos, ID: id, Sequence: last}, nil
}

// checkLogHas checks that the log's event at pos has the id id; hint, the
// likely cause, is named when not.
func (r *Relay) checkLogHas(ctx context.Context, pos int64, id uuid.UUID, hint string) error {
	found, err := domain.EventAt(ctx, r.store, pos)
	if err != nil {
		return fmt.Errorf("read the log at position %d: %w", pos, err)
	}
	if found.Position == 0 {
		return permanent(fmt.Errorf("stream %s ends at position %d, which this log does not hold (%s): %w",
			r.cfg.Stream, pos, hint, ErrStreamMismatch))
	}
	if found.ID != id {
		return permanent(fmt.Errorf("stream %s: position %d is event %s there but %s in this log (%s): %w",
			r.cfg.Stream, pos, id, found.ID, hint, ErrStreamMismatch))
	}
	return nil
}

// permanentError marks a failure that retrying cannot fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

func permanent(err error) error { return permanentError{err} }

// JetStream error codes of the server's that no retry changes (nats-server's
// errors.json; the client names only some of them).
const (
	errCodeSubjectOverlap        jetstream.ErrorCode = 10065
	errCodeReplicasNotSupported  jetstream.ErrorCode = 10074
	errCodeInsufficientResources jetstream.ErrorCode = 10023
)

// refusal marks err permanent when it is a JetStream answer that retrying
// cannot change: JetStream off, a stream or bucket the server will not
// create as configured (replicas a single server cannot hold, subjects
// another stream takes, an invalid configuration). A server without
// JetStream may also answer no responders, which is named as such.
func refusal(err error) error {
	if errors.Is(err, natsgo.ErrNoResponders) {
		return fmt.Errorf("%w (is JetStream enabled on the server?)", err)
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return err
	}
	switch api.ErrorCode {
	case jetstream.JSErrCodeJetStreamNotEnabled, jetstream.JSErrCodeJetStreamNotEnabledForAccount,
		errCodeSubjectOverlap, errCodeReplicasNotSupported:
		return permanent(err)
	case errCodeInsufficientResources:
		return err
	}
	if api.Code == 400 {
		return permanent(err)
	}
	return err
}

// errCodeMessageTooLarge is the server's answer to a message over the
// stream's MaxMsgSize (nats-server's errors.json), through the publisher's
// older NATS API.
const errCodeMessageTooLarge natsgo.ErrorCode = 10054

// isTooLarge reports whether err is JetStream refusing a message over the
// stream's MaxMsgSize.
func isTooLarge(err error) bool {
	var api *natsgo.APIError
	return errors.As(err, &api) && api.ErrorCode == errCodeMessageTooLarge
}

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}
