package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// errUsage marks bad command lines and bad values; main exits 2 on it.
var errUsage = errors.New("usage")

// usageErr returns an error that names the bad input and exits 2.
func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// env gives a command its surroundings; tests fill it with buffers.
type env struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	// fromEnv is every flag parseFlags filled from its variable (flag
	// name → variable), so that a usage error can name the variable
	// (nameVariables); nil: not recorded.
	fromEnv map[string]string
	// flagSets, when not nil, collects every flag set newFlagSet makes
	// (knownVariables).
	flagSets *[]*flag.FlagSet
}

// command is one subcommand of the ledger binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

// commands is every subcommand, in the order help lists them.
var commands = []command{
	{name: "serve", summary: "serve the HTTP API (writes, reads, history, live stream)", run: runServe},
	{name: "history", summary: "export events as json, ndjson or csv", run: runHistory},
	{name: "import", summary: "import history from another system (import legacy FILE.csv) or move a log to another store (import log SOURCE --db DEST)", run: runImport},
	{name: "backup", summary: "copy a running server's SQLite log into a new file: one consistent snapshot, checked", run: runBackup},
	{name: "restore", summary: "put a backup of a SQLite log in its place, setting aside the log and views file that were there", run: runRestore},
	{name: "rebuild", summary: "rebuild read models from the log (safe while a server runs)", run: runRebuild},
	{name: "asof", summary: "build all read models as of a time or position into a new file", run: runAsOf},
	{name: "verify", summary: "recompute read models from the log and diff with the live ones", run: runVerify},
	{name: "stats", summary: "events, streams, per-kind totals, projection positions and lag", run: runStats},
	{name: "relay", summary: "relay the log into a broker: relay nats", run: runRelay},
	{name: "bench", summary: "measure: bench store | http | baseline | rebuild | relay | generate", run: runBench},
}

// lookup returns the subcommand named name.
func lookup(name string) (command, bool) {
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		return command{}, false
	}
	return commands[i], true
}

// run is main without the process: it parses args and runs a subcommand.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr, fromEnv: map[string]string{}}
	if len(args) > 1 && args[0] == "help" { // "ledger help serve" printed the list of subcommands, exit 0
		return run(ctx, append(slices.Clone(args[1:]), "--help"), getenv, stdout, stderr)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stdout)
		if len(args) == 0 {
			return usageErr("a subcommand is required")
		}
		return nil
	}
	c, ok := lookup(args[0])
	if !ok {
		printUsage(stderr)
		return usageErr("unknown subcommand %q", args[0])
	}
	return e.nameVariables(c.run(ctx, e, args[1:]))
}

// nameVariables adds to a usage error the variables that set the flags it
// is about ("--kinds" or "kinds"; "consistency timeout" for
// --consistency-timeout), so that an operator who set LEDGER_KINDS in a
// unit file learns where the value came from. Values are not repeated:
// the error names them, and a secret's (LEDGER_JWT_SECRET) is never printed.
func (e env) nameVariables(err error) error {
	if !errors.Is(err, errUsage) {
		return err
	}
	var named []string
	for _, name := range slices.Sorted(maps.Keys(e.fromEnv)) {
		if mentions(err.Error(), "--"+name) || mentions(err.Error(), strings.ReplaceAll(name, "-", " ")) {
			named = append(named, e.fromEnv[name])
		}
	}
	if len(named) == 0 {
		return err
	}
	return fmt.Errorf("%w (set by %s)", err, strings.Join(named, ", "))
}

// mentions reports whether msg holds word, case aside, as a word of its
// own: not within a longer name ("kind" in "--kinds", "listen" in
// "--metrics-listen").
func mentions(msg, word string) bool {
	msg, word = strings.ToLower(msg), strings.ToLower(word)
	for i := 0; ; {
		j := strings.Index(msg[i:], word)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(word)
		if !nameByte(msg, start-1) && !nameByte(msg, end) {
			return true
		}
		i = start + 1
	}
}

// nameByte reports whether msg[i] exists and may be part of a flag's name,
// or of a path or file name ("db" in "ledger.db" is no mention of --db).
func nameByte(msg string, i int) bool {
	if i < 0 || i >= len(msg) {
		return false
	}
	c := msg[i]
	return strings.IndexByte("-_./", c) >= 0 || '0' <= c && c <= '9' || 'a' <= c && c <= 'z'
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "ledger records likes, collects and other interactions as an event log.")
	fmt.Fprintln(w, "\nUsage: ledger <subcommand> [flags]   (ledger <subcommand> --help for its flags)")
	fmt.Fprintln(w, "\nSubcommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery flag can also be set with an environment variable LEDGER_<FLAG>,")
	fmt.Fprintln(w, "upper-case with '-' as '_' (e.g. LEDGER_DB, LEDGER_CONSISTENCY_TIMEOUT).")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(e env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	if e.flagSets != nil {
		*e.flagSets = append(*e.flagSets, fs)
	}
	fs.SetOutput(e.stdout) // --help; parseFlags reports errors itself
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: ledger %s %s\n\nFlags (each also LEDGER_<FLAG>):\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, which must all be flags, then fills every flag
// not given on the command line from its LEDGER_* environment variable.
// Errors are usage errors, printed once by main (the flag package's own
// line and flag list are not printed); --help prints the flags to stdout
// and returns flag.ErrHelp unwrapped so callers can exit 0. A word that is not a flag is an error: the flag
// package stops at it, and every flag after it would silently keep its
// default (`ledger serve extra --db x.db` would serve ./data/ledger.db).
func parseFlags(fs *flag.FlagSet, e env, args []string) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return usageErr("%s (ledger %s --help lists the flags)", saysWhatIsWanted(fs, err), fs.Name())
	}
	if fs.NArg() > 0 {
		return usageErr("ledger %s takes no arguments, only flags: %q%s", fs.Name(), fs.Arg(0), boolValueHint(fs, args))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if _, ok := f.Value.(commandLineOnly); ok {
			return
		}
		name := envName(f.Name)
		if v := e.getenv(name); v != "" {
			if strings.TrimSpace(v) != v {
				errs = append(errs, usageErr("%s has white space at its start or end (a stray space in an env file, "+
					"the newline a secret file ends with?): remove it", name))
				return
			}
			if err := fs.Set(f.Name, v); err != nil { // counts as given
				errs = append(errs, usageErr("%s=%q: %s", name, v, wanted(f, err)))
			} else if e.fromEnv != nil {
				e.fromEnv[f.Name] = name
			}
		}
	})
	return errors.Join(errs...)
}

// boolValueHint says how to give a boolean flag its value when the stray
// word of args (fs.Arg(0)) is one following a boolean flag ("--json
// false"): the flag package takes the flag alone as true and stops at the
// word. "" otherwise.
func boolValueHint(fs *flag.FlagSet, args []string) string {
	i := len(args) - fs.NArg()
	if i < 1 || !strings.HasPrefix(args[i-1], "-") || strings.Contains(args[i-1], "=") || takesValue(fs, args[i-1]) {
		return ""
	}
	if _, err := strconv.ParseBool(fs.Arg(0)); err != nil {
		return ""
	}
	return fmt.Sprintf(" (a boolean flag takes a value only after =: %s=%s)", args[i-1], fs.Arg(0))
}

// saysWhatIsWanted replaces the flag package's "parse error" at the end of
// err ("invalid value "15" for flag -heartbeat: parse error") with what the
// flag wants (wanted).
func saysWhatIsWanted(fs *flag.FlagSet, err error) string {
	msg, ok := strings.CutSuffix(err.Error(), ": parse error")
	if !ok {
		return err.Error()
	}
	_, name, _ := strings.Cut(msg, " for ")
	name = strings.TrimPrefix(strings.TrimPrefix(name, "flag "), "-")
	if f := fs.Lookup(name); f != nil {
		return msg + ": " + wanted(f, err)
	}
	return err.Error()
}

// wanted says what kind of value f takes, in place of the flag package's
// bare "parse error"; other errors (out of range) are kept.
func wanted(f *flag.Flag, err error) string {
	if !strings.HasSuffix(err.Error(), "parse error") {
		return err.Error()
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return err.Error()
	}
	switch g.Get().(type) {
	case time.Duration:
		return "want a duration with its unit, e.g. 15s, 250ms or 1m"
	case bool:
		return "want true or false (or 1, 0)"
	case int, int64, uint, uint64:
		return "want a whole number"
	case float64:
		return "want a number, e.g. 0.5"
	}
	return err.Error()
}

// parseArgs is parseFlags for commands with positional arguments: flags
// may come before, between or after them. It returns the positional ones.
func parseArgs(fs *flag.FlagSet, e env, args []string) ([]string, error) {
	var pos, flags []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && takesValue(fs, a) {
				i++
				flags = append(flags, args[i])
			}
		default:
			pos = append(pos, a)
		}
	}
	return pos, parseFlags(fs, e, flags)
}

// takesValue reports whether the flag named by arg ("-x" or "--x") needs a
// value (every flag but booleans).
func takesValue(fs *flag.FlagSet, arg string) bool {
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// given reports whether the flag name was set, on the command line or by
// its environment variable (parseFlags).
func given(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// commandLineOnly is a string flag that parseFlags never fills from the
// environment (commandLineString).
type commandLineOnly struct{ s *string }

func (c commandLineOnly) String() string {
	if c.s == nil {
		return ""
	}
	return *c.s
}

func (c commandLineOnly) Set(v string) error {
	*c.s = v
	return nil
}

// commandLineString defines a string flag taken from the command line
// only: bench store's --db, a database it loads and makes schemas in, is
// never the LEDGER_DB exported for serve and the other commands, nor bench
// relay's --nats the relay's LEDGER_NATS.
func commandLineString(fs *flag.FlagSet, name, usage string) *string {
	s := new(string)
	fs.Var(commandLineOnly{s}, name, usage)
	return s
}

// envName maps a flag name to its environment variable.
func envName(flagName string) string {
	return "LEDGER_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// innerVariables are the LEDGER_* variables that are no flag's: the
// children of bench and the tests read them.
var innerVariables = []string{"LEDGER_CHILD", "LEDGER_TEST_POSTGRES_URL"}

// warnUnknownVariables warns about each LEDGER_* variable of environ that
// is no flag's of any subcommand, a typo most likely
// (LEDGER_CONSISTENCYTIMEOUT), which would leave its setting at the
// default without a word. A variable of another subcommand's flag is
// fine: one environment often serves every command.
func warnUnknownVariables(w io.Writer, environ []string) {
	var known map[string]bool
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "LEDGER_") {
			continue
		}
		if known == nil {
			known = knownVariables()
		}
		if !known[name] {
			fmt.Fprintf(w, "ledger: warning: %s names no flag of any subcommand: ignored (ledger <subcommand> --help lists the flags)\n", name)
		}
	}
}

// knownVariables is the variable of every flag of every subcommand, and
// the innerVariables: each subcommand is asked for its --help, its output
// discarded, and the flag sets it made are read.
func knownVariables() map[string]bool {
	var sets []*flag.FlagSet
	e := env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard, flagSets: &sets}
	nested := map[string][]string{"relay": {"nats"}, "bench": slices.Collect(maps.Keys(benchCommands))}
	for _, c := range commands {
		words, ok := nested[c.name]
		if !ok {
			words = []string{""}
		}
		for _, word := range words {
			args := []string{"--help"}
			if word != "" {
				args = []string{word, "--help"}
			}
			c.run(context.Background(), e, args)
		}
	}
	known := map[string]bool{}
	for _, name := range innerVariables {
		known[name] = true
	}
	for _, fs := range sets {
		fs.VisitAll(func(f *flag.Flag) { known[envName(f.Name)] = true })
	}
	return known
}

// helpOK turns --help into success.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}
