package nats

import (
	"fmt"

	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/interactionledger/ledger/adapters/bus"
	"github.com/interactionledger/ledger/domain"
	natsgo "github.com/nats-io/nats.go"
)

// HeaderPosition is the NATS header holding the event's log position.
const HeaderPosition = "Ledger-Position"

// HeaderLog is the NATS header holding the LogID of the log the event is
// of (domain.Identified): a relay refuses a stream whose last message
// names another log.
const HeaderLog = "Ledger-Log"

// MetaLog is the watermill metadata key that Marshaler turns into the
// Ledger-Log header, and Unmarshal reads it into.
const MetaLog = "ledger_log"

// MetaExpectedLastSequence is the watermill metadata key that Marshaler
// turns into JetStream's Nats-Expected-Last-Sequence header: the stream
// sequence the message must directly follow.
const MetaExpectedLastSequence = "ledger_expected_last_sequence"

// Marshaler converts between watermill messages built by the bus package
// and the relay's NATS messages. The subject is the topic handed to
// Publish; the payload is the message's payload unchanged (the event's
// JSON); the headers are Nats-Msg-Id (the message UUID, which is the event
// id), Ledger-Position (from bus.MetaPosition), Ledger-Log when the metadata
// has MetaLog and, when it has MetaExpectedLastSequence,
// Nats-Expected-Last-Sequence. No other metadata
// travels. The relay sets Nats-Msg-Id here rather than through
// watermill-nats' TrackMsgId, which would also need watermill's own UUID
// header on every message. It is stateless and safe for concurrent use.
type Marshaler struct{}

var (
	_ wmnats.Marshaler   = Marshaler{}
	_ wmnats.Unmarshaler = Marshaler{}
)

// Marshal returns the NATS message for msg on subject topic. It returns an
// error wrapping domain.ErrInvalidInput when msg has no position.
func (Marshaler) Marshal(topic string, msg *message.Message) (*natsgo.Msg, error) {
	pos := msg.Metadata.Get(bus.MetaPosition)
	if pos == "" {
		return nil, fmt.Errorf("message %s has no %s: %w", msg.UUID, bus.MetaPosition, domain.ErrInvalidInput)
	}
	h := natsgo.Header{}
	h.Set(natsgo.MsgIdHdr, msg.UUID)
	h.Set(HeaderPosition, pos)
	if log := msg.Metadata.Get(MetaLog); log != "" {
		h.Set(HeaderLog, log)
	}
	if seq := msg.Metadata.Get(MetaExpectedLastSequence); seq != "" {
		h.Set(natsgo.ExpectedLastSeqHdr, seq)
	}
	return &natsgo.Msg{Subject: topic, Data: msg.Payload, Header: h}, nil
}

// Unmarshal returns the watermill message of a relayed NATS message: UUID
// from Nats-Msg-Id, bus.MetaPosition from Ledger-Position, so that
// bus.DecodeMessage checks it against the payload, and MetaLog from
// Ledger-Log. It never fails; a
// message without the headers decodes with an empty UUID or position.
func (Marshaler) Unmarshal(nm *natsgo.Msg) (*message.Message, error) {
	msg := message.NewMessage(nm.Header.Get(natsgo.MsgIdHdr), nm.Data)
	if pos := nm.Header.Get(HeaderPosition); pos != "" {
		msg.Metadata.Set(bus.MetaPosition, pos)
	}
	if log := nm.Header.Get(HeaderLog); log != "" {
		msg.Metadata.Set(MetaLog, log)
	}
	return msg, nil
}
