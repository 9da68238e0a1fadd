package main

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/interactionledger/ledger/projections"
)

// progressReporter draws a progress bar (events, events/s, ETA) when
// stderr is a terminal and prints a plain line every few seconds when it
// is not (CI logs, files). The returned func is safe for concurrent use;
// finish ends the bar.
func progressReporter(e env, verb string) (report func(projections.Progress), finish func()) {
	report, finish = unitReporter(e, verb, "events")
	return sayWaiting(e, verb, report), finish
}

// unitReporter is progressReporter's bar or lines, counting unit.
func unitReporter(e env, verb, unit string) (report func(projections.Progress), finish func()) {
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return barReporter(e, verb, unit)
	}
	return lineReporter(e, verb, unit, 2*time.Second)
}

// sayWaiting passes progress on to report but for the wait for another
// rebuild's lock, which it says in a line of its own rather than as a bar
// or a count of "0/0 events".
func sayWaiting(e env, verb string, report func(projections.Progress)) func(projections.Progress) {
	return func(p projections.Progress) {
		if p.Phase == "wait" {
			fmt.Fprintf(e.stderr, "%s %s: waiting for another rebuild of the views file to end\n", verb, p.Projection)
			return
		}
		report(p)
	}
}

func barReporter(e env, verb, unit string) (func(projections.Progress), func()) {
	var mu sync.Mutex
	var bar *progressbar.ProgressBar
	var label string
	report := func(p projections.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if l := verb + " " + p.Projection + " (" + p.Phase + ")"; bar == nil || l != label {
			if bar != nil {
				bar.Finish()
			}
			label = l
			bar = progressbar.NewOptions64(max(p.Total, 1),
				progressbar.OptionSetWriter(e.stderr), progressbar.OptionSetDescription(l),
				progressbar.OptionShowCount(), progressbar.OptionShowIts(),
				progressbar.OptionSetItsString(unit), progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionFullWidth())
		}
		bar.Set64(p.Done)
	}
	return report, func() {
		mu.Lock()
		defer mu.Unlock()
		if bar != nil {
			bar.Finish()
			fmt.Fprintln(e.stderr)
		}
	}
}

func lineReporter(e env, verb, unit string, every time.Duration) (func(projections.Progress), func()) {
	var mu sync.Mutex
	start := time.Now()
	var last time.Time
	report := func(p projections.Progress) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		if now.Sub(last) < every && p.Phase != "done" {
			return
		}
		last = now
		rate := float64(p.Done) / max(now.Sub(start).Seconds(), 1e-9)
		eta := "?"
		if rate > 0 && p.Total >= p.Done {
			eta = time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(e.stderr, "%s %s: %s %d/%d %s, %.0f %s/s, ETA %s\n",
			verb, p.Projection, p.Phase, p.Done, p.Total, unit, rate, unit, eta)
	}
	return report, func() {}
}
