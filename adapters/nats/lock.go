package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/interactionledger/ledger/internal/backoff"
	"github.com/nats-io/nats.go/jetstream"
)

// errLockLost ends a session whose lock another relay may now hold.
var errLockLost = errors.New("relay lock lost")

// standbyLogEvery is how often a waiting relay repeats that it waits.
const standbyLogEvery = 30 * time.Second

// lock is the relay's hold on its key in the lock bucket. The key is
// created only if absent; the bucket's TTL removes it when its holder
// stops refreshing it (a relay that died).
type lock struct {
	kv     jetstream.KeyValue
	key    string
	holder []byte
	ttl    time.Duration
	rev    uint64
	log    *slog.Logger
}

// lockBucket opens the lock bucket, creating it when absent.
func (r *Relay) lockBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, r.cfg.LockBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: r.cfg.LockBucket, Description: "ledger relay locks, one key per stream",
			TTL: r.cfg.LockTTL, History: 1, Storage: jetstream.FileStorage, Replicas: r.cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) { // another relay created it just now
			kv, err = js.KeyValue(ctx, r.cfg.LockBucket)
		}
	}
	if err != nil {
		return nil, refusal(fmt.Errorf("lock bucket %s: %w", r.cfg.LockBucket, err))
	}
	return kv, nil
}

// acquire takes the lock, waiting as a standby while another relay holds
// it. It returns ctx's error or a NATS error.
func (r *Relay) acquire(ctx context.Context, js jetstream.JetStream) (*lock, error) {
	kv, err := r.lockBucket(ctx, js)
	if err != nil {
		return nil, err
	}
	l := &lock{kv: kv, key: r.cfg.Stream, holder: []byte(r.holder), ttl: r.cfg.LockTTL, log: r.log}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock bucket %s status: %w", r.cfg.LockBucket, err)
	}
	if st.TTL() <= 0 {
		// Nothing would ever expire a dead relay's lock: every standby
		// would wait for ever.
		return nil, permanent(fmt.Errorf("lock bucket %s has no TTL, so a relay that dies keeps its lock for ever: "+
			"delete the bucket (the relay creates it with --lock-ttl) or create it with a TTL", r.cfg.LockBucket))
	}
	// The bucket's TTL is what expires the key: refresh by it when an
	// existing bucket was created with another one.
	if st.TTL() != r.cfg.LockTTL {
		r.log.WarnContext(ctx, "the lock bucket's TTL differs from the configured one; the bucket's applies",
			"bucket", r.cfg.LockBucket, "bucket_ttl", st.TTL(), "lock_ttl", r.cfg.LockTTL)
		l.ttl = st.TTL()
	}
	var lastLog time.Time
	for {
		rev, err := kv.Create(ctx, l.key, l.holder)
		if err == nil {
			l.rev = rev
			r.log.InfoContext(ctx, "relay lock acquired", "bucket", r.cfg.LockBucket, "key", l.key, "holder", r.holder)
			return l, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("take relay lock %s/%s: %w", r.cfg.LockBucket, l.key, err)
		}
		if time.Since(lastLog) >= standbyLogEvery {
			lastLog = time.Now()
			r.log.InfoContext(ctx, "another relay holds the lock: waiting as a standby",
				"bucket", r.cfg.LockBucket, "key", l.key, "holder", l.currentHolder(ctx), "takes_over_within", l.ttl)
		}
		if !backoff.Sleep(ctx, min(l.ttl/4, time.Second)) {
			return nil, ctx.Err()
		}
	}
}

// currentHolder names the relay that holds the lock, for the log.
func (l *lock) currentHolder(ctx context.Context) string {
	e, err := l.kv.Get(ctx, l.key)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return string(e.Value())
}

// keep refreshes the lock every third of its TTL until ctx ends. When the
// lock was taken over, or a refresh fails two thirds of the TTL or more
// after the last one succeeded (so that it may expire before the next
// try), it cancels the session with errLockLost. Each refresh waits up to
// a third of the TTL, so against a NATS that does not answer that is up to
// the whole TTL, when a standby may start: what the old holder publishes
// then is refused by the expected-sequence precondition.
func (l *lock) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(l.ttl / 3)
	defer t.Stop()
	refreshed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, done := context.WithTimeout(ctx, l.ttl/3)
		rev, err := l.kv.Update(rctx, l.key, l.holder, l.rev)
		done()
		switch {
		case err == nil:
			l.rev, refreshed = rev, time.Now()
		case ctx.Err() != nil: // the session ended during the refresh
			return
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyNotFound):
			cancel(fmt.Errorf("%w: another relay took it or it expired: %v", errLockLost, err))
			return
		case time.Since(refreshed) >= 2*l.ttl/3:
			cancel(fmt.Errorf("%w: not refreshed for %s: %v", errLockLost, time.Since(refreshed).Round(time.Millisecond), err))
			return
		default:
			l.log.WarnContext(ctx, "refreshing the relay lock failed; trying again", "err", err)
		}
	}
}

// release deletes the key if this relay still holds it, so that a
// standby takes over at its next try. Errors are logged: the TTL frees the lock.
func (l *lock) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(l.rev)); err != nil {
		l.log.WarnContext(ctx, "releasing the relay lock failed; it expires on its own", "ttl", l.ttl, "err", err)
		return
	}
	l.log.InfoContext(ctx, "relay lock released", "key", l.key)
}
