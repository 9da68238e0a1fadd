package pathwatch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// FullEvery is the longest time between two full checks (an os.Stat of
// the path) while the watches report nothing.
const FullEvery = time.Second

// Watch reports whether a path, and the files beside it that New was
// given (a database's WAL), still name the files they named when the
// Watch was made. It is safe for concurrent use.
type Watch struct {
	paths  []string      // the path, then its siblings
	opened []os.FileInfo // what each named at New

	mu        sync.Mutex
	watcher   *watcher // nil: every check stats the paths
	lastFull  time.Time
	fullEvery time.Duration
	stats     int                               // full checks so far (tests)
	stat      func(string) (os.FileInfo, error) // os.Stat; tests make it fail
}

// New watches path and the files named by siblings in the same directory
// (e.g. "log.db-wal" beside "log.db"), which must all exist: the ones
// later checks compare against.
func New(path string, siblings ...string) (*Watch, error) {
	w := &Watch{paths: []string{path}, fullEvery: FullEvery, stat: os.Stat}
	for _, name := range siblings {
		w.paths = append(w.paths, filepath.Join(filepath.Dir(path), name))
	}
	// The watches first: a change after the stats below is then reported.
	w.watcher = newWatcher(path, siblings)
	for _, p := range w.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("pathwatch: %w", errors.Join(err, w.Close()))
		}
		w.opened = append(w.opened, fi)
	}
	w.lastFull = time.Now()
	return w, nil
}

// Changed returns the first watched path that no longer names the file it
// named at New (it names another file, or none), "" when none. A stat that
// fails for another reason (EACCES, EIO) says nothing about which file the
// path names: Changed then returns "" and that error, and the next check
// stats again.
func (w *Watch) Changed() (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.watcher != nil && w.watcher.quiet() && now.Sub(w.lastFull) < w.fullEvery {
		return "", nil
	}
	w.stats++
	for i, p := range w.paths {
		fi, err := w.stat(p)
		switch {
		case namesNone(err):
			return p, nil
		case err != nil:
			return "", fmt.Errorf("pathwatch: %w", err)
		case !os.SameFile(fi, w.opened[i]):
			return p, nil
		}
	}
	w.lastFull = now
	return "", nil
}

// namesNone reports whether a stat's error means that the path names no
// file: a missing name, or a name along it that is not a directory.
func namesNone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Close releases the watches; later checks stat the path.
func (w *Watch) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watcher == nil {
		return nil
	}
	err := w.watcher.close()
	w.watcher = nil
	return err
}
