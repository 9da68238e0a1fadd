package linkpath

import (
	"os"
	"path/filepath"
	"strings"
)

// End returns the path a chain of symlinks at path ends at, even
// where nothing is there yet (filepath.EvalSymlinks fails on that): a
// write through the links creates the file there. The links of the
// directories on the way are resolved too (a linked directory), before
// any ".." after them, as the kernel does: <link>/.. is the parent of the
// directory the link points to, not the link's (a lexical Clean would
// say). It is path when there are none.
func End(path string) string {
	for range 40 { // the kernel's own limit on a chain
		// The directory as written, not cleaned: EvalSymlinks resolves
		// each link before the ".." that follows it.
		if i := strings.LastIndexByte(path, filepath.Separator); i >= 0 {
			if dir, err := filepath.EvalSymlinks(path[:i+1]); err == nil {
				path = filepath.Join(dir, path[i+1:])
			}
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(dest) {
			// Not joined (which cleans): the next step resolves its
			// directory, ".." included.
			dest = filepath.Dir(path) + string(filepath.Separator) + dest
		}
		path = dest
	}
	return path
}
