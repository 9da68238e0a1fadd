package main

import (
	"context"
	"fmt"
	"os"

	"github.com/interactionledger/ledger/domain"
)

// fileGuard refuses appends while the log's path no longer names the file
// the store opened (renamed, deleted or replaced under the server). SQLite
// would go on writing to the open, nameless file, and a restart would then
// start from whatever the path holds: every write acknowledged in between
// would be lost. It costs one stat per append. It is safe for concurrent
// use.
type fileGuard struct {
	domain.EventStore
	path   string
	opened os.FileInfo
}

var _ domain.EventStore = (*fileGuard)(nil)

// newFileGuard wraps store, whose file is at path; it returns the error of
// stat-ing path.
func newFileGuard(store domain.EventStore, path string) (*fileGuard, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("stat the event log: %w", err)
	}
	return &fileGuard{EventStore: store, path: path, opened: fi}, nil
}

// Append appends through the store when the path still names its file; it
// returns domain.ErrUnavailable (with a reason) when it does not, and the
// store's errors otherwise.
func (g *fileGuard) Append(ctx context.Context, req domain.AppendRequest) (domain.AppendResult, error) {
	if err := g.check(); err != nil {
		return domain.AppendResult{}, fmt.Errorf("append %s: %w", req.Stream, err)
	}
	return g.EventStore.Append(ctx, req)
}

// check is nil when the path names the opened file.
func (g *fileGuard) check() error {
	fi, err := os.Stat(g.path)
	if err != nil || !os.SameFile(fi, g.opened) {
		return &vanishedError{path: g.path}
	}
	return nil
}

// vanishedError is domain.ErrUnavailable with the reason clients see.
type vanishedError struct{ path string }

func (e *vanishedError) Error() string {
	return fmt.Sprintf("the event log %s was moved or deleted while open", e.path)
}
func (e *vanishedError) Unwrap() error { return domain.ErrUnavailable }

// Reason is the short cause the HTTP adapter shows.
func (e *vanishedError) Reason() string { return "the database file was moved or deleted" }
