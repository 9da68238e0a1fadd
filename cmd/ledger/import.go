package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/interactionledger/ledger/adapters/legacy"
	"github.com/interactionledger/ledger/domain"
)

func runImport(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "import", "legacy FILE.csv [flags] | log SOURCE --db DEST")
	db := dbFlag(fs)
	kinds := kindsFlag(fs)
	onError := fs.String("on-error", "fail", "import legacy: what to do with inconsistent rows: fail (import nothing) or skip (import the rest)")
	source := fs.String("source", "legacy", "import legacy: name of the source system; part of every derived event id")
	lockWait := fs.Duration("lock-wait", defaultLockWait, "import log: how long to wait for a SQLite SOURCE's write lock while a server on it writes")
	pos, err := parseArgs(fs, e, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) > 0 && pos[0] == "log" { // --kinds, --on-error and --source are legacy's
		return importLog(ctx, e, pos[1:], *db, *lockWait)
	}
	if len(pos) != 2 || pos[0] != "legacy" {
		return usageErr("want: import legacy FILE.csv or import log SOURCE --db DEST, got %q (ledger import --help lists the flags)", pos)
	}
	if *onError != "fail" && *onError != "skip" {
		return usageErr("--on-error %q: want fail or skip", *onError)
	}
	if *source == "" {
		return usageErr("--source must not be empty")
	}
	set, err := parseKinds(*kinds)
	if err != nil {
		return err
	}
	if err := checkDB(*db); err != nil { // before a file of millions of rows is read
		return err
	}
	plan, err := readPlan(ctx, e, pos[1], set, *source, *onError)
	if err != nil {
		return err
	}
	defer plan.Close()
	store, err := openStore(ctx, *db, storeOptions{}, cliLogger(e))
	if err != nil {
		return err
	}
	defer store.Close()
	ledger := domain.NewLedger(store, set, domain.LedgerConfig{}, cliLogger(e))
	res, err := legacy.Apply(ctx, ledger, plan, importProgress(e, plan.Steps))
	// The conflicts found are listed after an interrupt too: the summary
	// counts them, and the scratch database is read, not the store.
	if cerr := plan.Conflicts(context.WithoutCancel(ctx), printRowError(e, pos[1])); err == nil {
		err = cerr
	}
	fmt.Fprintf(e.stdout, "imported %s: %d rows, %d events appended, %d already present, %d conflicting\n",
		pos[1], plan.Rows, res.Appended, res.Existing, res.Conflicts)
	if err == nil && res.Conflicts > 0 {
		err = fmt.Errorf("%s: %d events conflict with the ledger's history and were not imported", pos[1], res.Conflicts)
	}
	return err
}

// printRowError prints a row's error on stderr as FILE:LINE: COLUMN: REASON.
func printRowError(e env, path string) func(legacy.RowError) error {
	return func(b legacy.RowError) error {
		fmt.Fprintf(e.stderr, "%s:%d: %s: %s\n", path, b.Line, b.Column, b.Reason)
		return nil
	}
}

// readPlan parses the file and reports every rejected row on stderr. With
// --on-error fail, any rejected row fails the import before anything is
// written. The caller closes the plan.
func readPlan(ctx context.Context, e env, path string, set domain.KindSet, source, onError string) (*legacy.Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return nil, usageErr("%s is a directory, not a CSV file", path)
	}
	plan, err := legacy.Parse(ctx, f, set, source)
	if err != nil {
		if errors.Is(err, domain.ErrInvalidInput) {
			return nil, usageErr("%s: %v", path, err)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	err = plan.Errors(ctx, printRowError(e, path))
	if err == nil && plan.Rejected > 0 && onError == "fail" {
		err = fmt.Errorf("%s: %d inconsistent rows, nothing imported (use --on-error skip to import the rest)", path, plan.Rejected)
	}
	if err != nil {
		_ = plan.Close()
		return nil, err
	}
	if plan.Rejected > 0 {
		fmt.Fprintf(e.stderr, "skipping %d inconsistent rows\n", plan.Rejected)
	}
	return plan, nil
}

func importProgress(e env, total int) func(int) {
	const every = 10000
	return func(done int) {
		if done%every == 0 && done < total {
			fmt.Fprintf(e.stderr, "imported %d/%d events\n", done, total)
		}
	}
}
