package projections

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/linkpath"
)

// AsOf selects a point in the log: a position, or a time. A time selects
// by recorded order, not by OccurredAt: the position is the last one whose
// RecordedAt <= Time, and every event up to it is included. That is a
// prefix of the log, so the result is a state the live read model really
// went through (occurred times can arrive out of order, e.g. from an
// import, and a cut by them would be a state that never existed).
type AsOf struct {
	Position int64     // used when Time is zero; 0 means the head
	Time     time.Time // when set, overrides Position
}

// BuildAsOf builds every projection of the given kinds as of at into a new
// SQLite file at path, which must not exist, and returns the position it
// stands at. The file is a views file: Open it (with no store) to query it.
// Errors: *domain.ValidationError for an existing path, a negative
// position or one beyond the log's head (the file would claim a state the
// log never had); the store's or SQLite's error; ctx's error. A build that
// fails leaves no file at path.
func BuildAsOf(ctx context.Context, store domain.EventReader, path string, kinds domain.KindSet, at AsOf, progress func(Progress), log *slog.Logger) (int64, error) {
	if at.Position < 0 {
		return 0, &domain.ValidationError{Field: "position", Reason: "must be >= 0"}
	}
	// A symlink to no file yet is written through: the file is made (and,
	// on a failure, removed) where its chain of links ends.
	given := path
	path = linkpath.End(path)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return 0, pathExists(given, path)
	}
	pos := at.Position
	if pos == 0 {
		pos = head
	} else if err := withinLog(ctx, store, pos); err != nil {
		return 0, err
	}
	if !at.Time.IsZero() {
		var err error
		if pos, err = positionAt(ctx, store, at.Time); err != nil {
			return 0, fmt.Errorf("as of %s: %w", at.Time.Format(time.RFC3339Nano), err)
		}
	}
	if err := createNew(given, path); err != nil {
		return 0, err
	}
	last, err := buildAsOfFile(ctx, store, path, kinds, pos, progress, log)
	if err != nil {
		removeDatabase(path) // made above: a cut build would read as a state
	}
	return last, err
}

// pathExists is the error of a path given (end, where its links end)
// that exists: it names the path as given, and where it leads.
func pathExists(given, end string) error {
	name := given
	if end != given {
		name = fmt.Sprintf("%s (a link to %s)", given, end)
	}
	return &domain.ValidationError{Field: "path", Reason: name + " exists; as-of builds into a new file"}
}

// createNew makes the empty file at path (a new SQLite database, where
// the given path's links end), refusing
// one there already: another process may have made it during the scans
// since the first check, and the build must neither write into it nor,
// failing, remove it.
func createNew(given, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if errors.Is(err, fs.ErrExist) {
		return pathExists(given, path)
	}
	if err != nil {
		return err
	}
	return f.Close()
}

// buildAsOfFile builds the new file at path up to pos.
func buildAsOfFile(ctx context.Context, store domain.EventReader, path string, kinds domain.KindSet, pos int64, progress func(Progress), log *slog.Logger) (int64, error) {
	s, err := open(ctx, Config{Path: path, Kinds: kinds}, scratch, log)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	last, err := s.buildAll(ctx, store, pos, progress)
	if err != nil {
		return 0, fmt.Errorf("as of %d: %w", pos, err)
	}
	return last, nil
}

// removeDatabase removes the SQLite file at path with its -wal, -shm and
// -journal.
func removeDatabase(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}

// positionAt returns the last position whose RecordedAt <= t. Recorded
// times follow commit order on one machine, but a clock step could break
// that, so the whole log is scanned rather than stopping at the first
// later time.
func positionAt(ctx context.Context, store domain.EventReader, t time.Time) (int64, error) {
	var pos int64
	for e, err := range store.ReadEvents(ctx, domain.EventFilter{}) {
		if err != nil {
			return 0, err
		}
		if !e.RecordedAt.After(t) {
			pos = e.Position
		}
	}
	return pos, nil
}

// buildAll builds every projection of s into its (empty) live tables up to
// position upTo (head: the end of the log) and sets their checkpoints to the last
// position folded.
func (s *Set) buildAll(ctx context.Context, store domain.EventReader, upTo int64, progress func(Progress)) (int64, error) {
	if err := createTables(ctx, s.v.write, s.projs, ""); err != nil {
		return 0, err
	}
	total, err := store.LastPosition(ctx)
	if err != nil {
		return 0, err
	}
	b := &builder{db: s.v.write, store: store, projs: s.projs, foldKeys: s.cfg.FoldKeys,
		fresh: true, label: label(s.projs), total: min(total, upTo), progress: progress}
	last, err := b.run(ctx, 0, upTo)
	if err != nil {
		return 0, err
	}
	mark, err := markAt(ctx, store, last)
	if err != nil {
		return 0, err
	}
	if err := s.setCheckpoints(ctx, mark, domain.LogIDOf(store)); err != nil {
		return 0, err
	}
	b.report("done", 0)
	return last, nil
}

// setCheckpoints sets every projection's checkpoint to the position of
// last, the log's event there.
func (s *Set) setCheckpoints(ctx context.Context, last eventMark, logID string) error {
	err := inTx(ctx, s.v.write, func(tx querier) error {
		for _, p := range s.projs {
			if err := setCheckpoint(ctx, tx, p.name(), p.version(), last); err != nil {
				return err
			}
			if err := setBuiltFrom(ctx, tx, p.name(), logID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.mem.invalidate("checkpoints set by a build")
	for _, p := range s.projs {
		s.advance(p.name(), last.pos)
	}
	return nil
}

// withinLog refuses a position beyond the log's last one.
func withinLog(ctx context.Context, store domain.EventReader, pos int64) error {
	last, err := store.LastPosition(ctx)
	if err != nil {
		return fmt.Errorf("as of position %d: %w", pos, err)
	}
	if pos > last {
		return &domain.ValidationError{Field: "position", Reason: fmt.Sprintf("%d is beyond the log's last position, %d", pos, last)}
	}
	return nil
}
