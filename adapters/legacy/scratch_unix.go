//go:build unix

package legacy

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

// running reports whether a process of pid runs, as far as kill(2) with
// no signal tells: only ESRCH says it does not (EPERM is another user's).
func running(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// ownedByMe reports whether info's file belongs to this process's user.
func ownedByMe(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}
