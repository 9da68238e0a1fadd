package pathwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	stats     int // full checks so far (tests)
}

// New watches path and the files named by siblings in the same directory
// (e.g. "log.db-wal" beside "log.db"), which must all exist: the ones
// later checks compare against.
func New(path string, siblings ...string) (*Watch, error) {
	w := &Watch{paths: []string{path}, fullEvery: FullEvery}
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

// Names reports whether every watched path still names the file it named
// at New.
func (w *Watch) Names() bool { return w.Changed() == "" }

// Changed returns the first watched path that no longer names the file it
// named at New, "" when none.
func (w *Watch) Changed() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.watcher != nil && w.watcher.quiet() && now.Sub(w.lastFull) < w.fullEvery {
		return ""
	}
	w.stats++
	for i, p := range w.paths {
		fi, err := os.Stat(p)
		if err != nil || !os.SameFile(fi, w.opened[i]) {
			return p
		}
	}
	w.lastFull = now
	return ""
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
