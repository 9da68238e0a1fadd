package sqlite

import (
	"database/sql/driver"
	"fmt"
	"sync"

	"github.com/interactionledger/ledger/domain"
)

// streamTail is the (user, target) identity of the streams that wait
// outside the stream indexes (stream_users and stream_targets): every
// stream whose key is in (through, last], by its key. The writer keeps it
// (reload, publish); Snapshot reads it, so that a write's lookup of its
// stream is one primary-key read whether or not the stream is indexed yet.
//
// Only the writer changes it, holding the store's wmu and mu; the writer
// reads it under wmu alone, readers under mu. A stream with a larger key
// (another process appended it since) is not here: readers find it with a
// range of the streams' rowids after last.
type streamTail struct {
	mu            sync.RWMutex
	keys          map[domain.StreamID]int64
	through, last int64
}

// lookup returns the key of st if it is in the tail, and the last key the
// tail covers.
func (t *streamTail) lookup(st domain.StreamID) (key int64, ok bool, last int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	key, ok = t.keys[st]
	return key, ok, t.last
}

// key is lookup for the writer, which holds wmu.
func (t *streamTail) key(st domain.StreamID) (int64, bool) {
	key, ok := t.keys[st]
	return key, ok
}

// newStream is a stream a transaction created.
type newStream struct {
	id  domain.StreamID
	key int64
}

// publish records a commit: the streams it created, its last stream key,
// and the watermark after it. Streams at or below a watermark that moved
// are indexed now, and leave the tail.
func (t *streamTail) publish(created []newStream, last, through int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = make(map[domain.StreamID]int64)
	}
	if through > t.through {
		for id, key := range t.keys {
			if key <= through {
				delete(t.keys, id)
			}
		}
		t.through = through
	}
	for _, s := range created {
		if s.key > through {
			t.keys[s.id] = s.key
		}
	}
	t.last = last
}

// replace makes keys the tail, the streams after through up to last, read
// in the transaction that read through and last (writer.reloadTail).
func (t *streamTail) replace(keys map[domain.StreamID]int64, through, last int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys, t.through, t.last = keys, through, last
}

// storedStreamID parses a stored stream identity, three text columns.
func storedStreamID(user, ttype, tid driver.Value) (domain.StreamID, error) {
	cols := [3]string{}
	for i, v := range []driver.Value{user, ttype, tid} {
		s, ok := v.(string)
		if !ok {
			return domain.StreamID{}, fmt.Errorf("identity column %d is %T, not text: %w", i+1, v, domain.ErrUnavailable)
		}
		cols[i] = s
	}
	u, err := domain.NewUserID(cols[0])
	if err != nil {
		return domain.StreamID{}, err
	}
	t, err := domain.NewTarget(cols[1], cols[2])
	if err != nil {
		return domain.StreamID{}, err
	}
	return domain.StreamID{User: u, Target: t}, nil
}
