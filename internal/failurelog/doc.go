// Package failurelog logs runs of failures of a repeated operation (a
// store's group commits, a tail's reads of the log) without flooding: the
// first failure, then one line every few seconds with a count, then the
// success that ends the run.
package failurelog
