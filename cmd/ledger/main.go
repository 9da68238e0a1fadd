package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	warnUnknownVariables(os.Stderr, os.Environ())
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		report(os.Stderr, err, interrupted)
		os.Exit(exitCode(err))
	}
}

// report prints why the command failed. A command a signal stopped says
// so first: its own error is then only "context canceled" somewhere deep
// ("rebuild all: context canceled"), which reads like a fault.
func report(w io.Writer, err error, interrupted bool) {
	if interrupted && errors.Is(err, context.Canceled) {
		fmt.Fprintln(w, "ledger: interrupted, stopped before the end:", err)
		return
	}
	fmt.Fprintln(w, "ledger:", err)
}

// exitCode is 2 for bad usage (flags, values), 1 for any other failure.
func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}
