//go:build !linux

package pathwatch

// watcher is not implemented off Linux: every check stats the path.
type watcher struct{}

func newWatcher(string, []string) *watcher { return nil }

func (*watcher) quiet() bool { return false }

func (*watcher) close() error { return nil }
