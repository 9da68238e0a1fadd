//go:build unix

package sqlite

import (
	"os"

	"golang.org/x/sys/unix"
)

// fileWritable checks that the file at path may be written, with
// access(2), without opening it (see Writable).
func fileWritable(path string) error {
	if err := unix.Access(path, unix.W_OK); err != nil {
		return &os.PathError{Op: "access", Path: path, Err: err}
	}
	return nil
}
