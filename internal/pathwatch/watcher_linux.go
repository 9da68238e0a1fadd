package pathwatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"

	"golang.org/x/sys/unix"
)

// watchMask is what a watch on a directory along the path reports: its
// entries created, deleted or renamed (filtered to the one name the path
// goes through), and the directory itself deleted or renamed.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// touchMask are events that end the watcher's knowledge whatever their
// name: the queue overflowed, or a watched directory went away.
const touchMask = unix.IN_Q_OVERFLOW | unix.IN_IGNORED | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_UNMOUNT

// watcher is one inotify instance with a watch on each directory along
// an absolute path free of symbolic links.
type watcher struct {
	fd      int
	names   map[int32][]string // watch descriptor: the names watched in that directory
	buf     []byte
	touched bool // an event may have changed what a path names
}

// newWatcher watches the directories along path, for the name the path
// goes through in each and, in the last, the siblings' names too; or
// returns nil when it cannot (the caller then stats the paths on every
// check).
func newWatcher(path string, siblings []string) *watcher {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	if real, err := filepath.EvalSymlinks(abs); err != nil || real != abs {
		return nil // a link's target would need watches of its own
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil // e.g. fs.inotify.max_user_instances reached
	}
	w := &watcher{fd: fd, names: make(map[int32][]string), buf: make([]byte, 16<<10)}
	for p := abs; p != filepath.Dir(p); p = filepath.Dir(p) {
		wd, err := unix.InotifyAddWatch(fd, filepath.Dir(p), watchMask)
		if err != nil {
			_ = w.close()
			return nil
		}
		w.names[int32(wd)] = []string{filepath.Base(p)}
		if p == abs {
			w.names[int32(wd)] = append(w.names[int32(wd)], siblings...)
		}
	}
	return w
}

// quiet reports whether no change of the path has completed since the
// watches were set: it drains the queue, dropping events for other names.
func (w *watcher) quiet() bool {
	for !w.touched {
		n, err := unix.Read(w.fd, w.buf)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return true
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil || n <= 0:
			w.touched = true
		default:
			w.touched = w.touches(w.buf[:n])
		}
	}
	return false
}

// touches reports whether any of the events in b may change what the path
// names.
func (w *watcher) touches(b []byte) bool {
	for len(b) >= unix.SizeofInotifyEvent {
		// struct inotify_event: wd, mask, cookie, len, then the name,
		// padded with NULs to len bytes.
		wd := int32(binary.NativeEndian.Uint32(b[0:]))
		mask := binary.NativeEndian.Uint32(b[4:])
		end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:]))
		if end > len(b) {
			return true // a torn event: never expected, so assume the worst
		}
		name := bytes.TrimRight(b[unix.SizeofInotifyEvent:end], "\x00")
		if mask&touchMask != 0 || slices.Contains(w.names[wd], string(name)) {
			return true
		}
		b = b[end:]
	}
	return false
}

func (w *watcher) close() error { return unix.Close(w.fd) }
