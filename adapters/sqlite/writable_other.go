//go:build !unix

package sqlite

// fileWritable checks nothing where there is no access(2): opening the
// file to find out is what Writable must never do.
func fileWritable(string) error { return nil }

// diskFree checks nothing where there is no statfs(2).
func diskFree(string) error { return nil }
