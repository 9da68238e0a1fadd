package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/interactionledger/ledger/domain"
)

// Writable is nil when the store can take writes: it was opened for
// writing, its path still names the file it writes (Intact), the file
// may be written, and its file system has room for a commit (diskFree:
// a disk that filled up stays not writable until space is freed, where
// only the commit that failed on it said so). It is the check a health endpoint wants
// (httpapi.Deps.Writable), and it never opens the file: closing any
// descriptor of a file releases every POSIX lock this process holds on
// it, SQLite's included, after which another SQLite client takes itself
// for the file's last user, checkpoints and deletes the WAL under the
// store. Acknowledged writes were lost that way after one /readyz
// (SQLite, "How To Corrupt An SQLite Database File", 2.2), so a check of
// one's own must not open the file either.
func (s *EventStore) Writable(context.Context) error {
	if s.cfg.ReadOnly {
		return fmt.Errorf("sqlite: %s was opened read-only: %w", s.path, domain.ErrUnavailable)
	}
	return errors.Join(s.Intact(), fileWritable(s.path), diskFree(s.path))
}

// minFree is the least room on the log's file system that Writable takes
// for writable: a commit appends its pages to the WAL, and a checkpoint
// grows the database file by as many.
const minFree = 1 << 20
