// Package linkpath follows a chain of symbolic links to where it ends, even
// where no file is yet: the path a write through the links creates. The
// commands use it to keep their output files off a store's files
// (cmd/ledger) and to build an as-of file through a link (projections).
package linkpath
