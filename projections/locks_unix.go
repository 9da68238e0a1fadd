//go:build unix

package projections

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// LockRebuild takes the rebuild lock of the views file at path, waiting
// while another rebuild (in this process or another) holds it, and returns
// what releases it. Two rebuilds share the "__new" tables: run together,
// each dropped and refilled the other's, so both failed or a swap took the
// other's half-filled tables. The lock is a flock on a file of its own beside the
// views file, never on the views file itself: closing any descriptor of a
// SQLite file drops the POSIX locks SQLite holds on it in this process.
// The kernel releases it when its holder dies, so a killed rebuild leaves
// nothing to clean up.
// A nil log discards.
func LockRebuild(ctx context.Context, path string, log *slog.Logger) (unlock func(), err error) {
	return lockRebuild(ctx, path, log, nil)
}

// lockRebuild is LockRebuild calling waiting, when not nil, once it finds
// the lock held.
func lockRebuild(ctx context.Context, path string, log *slog.Logger, waiting func()) (unlock func(), err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for logged := false; ; logged = true {
		unlock, held, err := tryLock(path + ".rebuild-lock")
		if err != nil || !held {
			return unlock, err
		}
		if !logged {
			if waiting != nil {
				waiting()
			}
			log.InfoContext(ctx, "waiting for another rebuild of the views file to end", "path", path)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LockServe takes the serve lock of the views file at path, without
// waiting, and returns what releases it: a flock on a file of its own
// beside the views file (<views>.serve-lock), as LockRebuild's. Two servers
// on one views file (a node started with another node's --views) applied
// the log into it together and each found the other's commits under its
// in-memory copy, which it then reloaded from both tables every second
// instead of answering reads from memory. The kernel releases the lock
// when its holder dies, so a killed server leaves nothing to clean up.
// The views file's directory is made first, as Open makes it, since the
// lock file sits beside the views file.
func LockServe(path string) (unlock func(), err error) {
	if err := makeDir(path); err != nil {
		return nil, err
	}
	unlock, held, err := tryLock(path + ".serve-lock")
	if err == nil && held {
		return nil, fmt.Errorf("another server serves the views file %s (its lock %s.serve-lock is held): %w; "+
			"each node needs a views file of its own (--views)", path, path, ErrServed)
	}
	return unlock, err
}

// tryLock takes an exclusive flock on the lock file at name (created if
// missing, opened read-only: flock needs no write access, so a lock file
// another user left does not stop the next holder), without waiting. held
// is true when another holds it; closing the file (unlock) releases it.
func tryLock(name string) (unlock func(), held bool, err error) {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("lock %s: %w", name, err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		return func() { f.Close() }, false, nil
	}
	f.Close()
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, true, nil
	}
	return nil, false, fmt.Errorf("lock %s: %w", name, err)
}
