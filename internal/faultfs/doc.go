// Package faultfs gives store-fault tests a file system of their own to
// break: a size-limited tmpfs, or a fresh ext4 image on a loop device (for
// chattr), mounted for one test, and a filler that takes its last byte.
// Mounting needs root on Linux; where the machine forbids it the test is
// skipped with the reason, except under CI=true, where it fails.
//
// It is imported by tests only; nothing here runs in the ledger.
package faultfs
