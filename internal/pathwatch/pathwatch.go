package pathwatch

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// FullEvery is the longest time between two full checks (an os.Stat of
// the path) while the watches report nothing.
const FullEvery = time.Second

// Watch reports whether a path still names the file it named when the
// Watch was made. It is safe for concurrent use.
type Watch struct {
	path   string
	opened os.FileInfo

	mu        sync.Mutex
	watcher   *watcher // nil: every check stats the path
	lastFull  time.Time
	fullEvery time.Duration
	stats     int // full checks so far (tests)
}

// New watches path, which must name an existing file: the one later
// checks compare against.
func New(path string) (*Watch, error) {
	w := &Watch{path: path, fullEvery: FullEvery}
	// The watches first: a change after the stat below is then reported.
	w.watcher = newWatcher(path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pathwatch: %w", errors.Join(err, w.Close()))
	}
	w.opened, w.lastFull = fi, time.Now()
	return w, nil
}

// Names reports whether the path still names the file it named at New.
func (w *Watch) Names() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	if w.watcher != nil && w.watcher.quiet() && now.Sub(w.lastFull) < w.fullEvery {
		return true
	}
	w.stats++
	fi, err := os.Stat(w.path)
	if err != nil || !os.SameFile(fi, w.opened) {
		return false
	}
	w.lastFull = now
	return true
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
