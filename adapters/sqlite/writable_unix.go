//go:build unix

package sqlite

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/interactionledger/ledger/domain"

	"golang.org/x/sys/unix"
)

// diskFree checks, with statfs(2), that the file system of path has at
// least minFree bytes free for this process.
func diskFree(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		return &os.PathError{Op: "statfs", Path: filepath.Dir(path), Err: err}
	}
	if free := uint64(st.Bavail) * uint64(st.Bsize); free < minFree {
		return fmt.Errorf("sqlite: the file system of %s has %d bytes free (disk full): %w", path, free, domain.ErrUnavailable)
	}
	return nil
}

// fileWritable checks that the file at path may be written, with
// access(2), without opening it (see Writable).
func fileWritable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return &os.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}
