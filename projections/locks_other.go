//go:build !unix

package projections

import (
	"context"
	"log/slog"
)

// LockRebuild takes no lock where flock is missing: two rebuilds of one
// views file must not run at the same time there (see the unix version).
func LockRebuild(context.Context, string, *slog.Logger) (unlock func(), err error) {
	return func() {}, nil
}

func lockRebuild(ctx context.Context, path string, log *slog.Logger, _ func()) (unlock func(), err error) {
	return LockRebuild(ctx, path, log)
}

// LockServe takes no lock where flock is missing: two servers must not
// share one views file there (see the unix version).
func LockServe(string) (unlock func(), err error) {
	return func() {}, nil
}
