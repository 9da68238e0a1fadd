package main

import (
	"context"
	"io"
	"strings"

	"github.com/interactionledger/ledger/adapters/eventcodec"
	"github.com/interactionledger/ledger/domain"
)

func runHistory(ctx context.Context, e env, args []string) error {
	fs := newFlagSet(e, "history", "[flags]")
	db := dbFlag(fs)
	user := fs.String("user", "", "only this user's events")
	target := fs.String("target", "", "only this target, as type/id")
	kind := fs.String("kind", "", "only this kind (one of --kinds)")
	kinds := kindsFlag(fs)
	since := fs.String("since", "", "only events that occurred at or after this RFC 3339 time")
	until := fs.String("until", "", "only events that occurred before this RFC 3339 time")
	after := fs.Int64("after", 0, "only events after this position")
	limit := fs.Int("limit", 0, "at most this many events (0: all)")
	format := fs.String("format", "ndjson", "json, ndjson or csv")
	out := fs.String("out", "", "write to this file instead of stdout (-: stdout)")
	if err := parseFlags(fs, e, args); err != nil {
		return helpOK(err)
	}
	if *out == "-" {
		*out = "" // stdout, as for most tools; it wrote a file named "-"
	}
	set, err := parseKinds(*kinds)
	if err != nil {
		return err
	}
	filter, err := historyFilter(*user, *target, *kind, *since, *until, *after, *limit)
	if err != nil {
		return err
	}
	if filter.Kind != (domain.Kind{}) && !set.Has(filter.Kind) {
		return usageErr("--kind %q is not one of the kinds %s (--kinds: give the server's, and any kind the log holds from before)",
			*kind, strings.Join(set.Names(), ","))
	}
	write, err := eventWriter(*format)
	if err != nil {
		return err
	}
	if err := notStoreFile("--out", *out, *db, ""); err != nil {
		return err
	}
	if err := outNamesAFile("--out", *out); err != nil {
		return err
	}
	store, err := openStore(ctx, *db, storeOptions{readOnly: true}, cliLogger(e))
	if err != nil {
		return err
	}
	defer store.Close()
	noteMoved(ctx, e, store, *db)
	if err := afterWithinHead(ctx, store, filter.After); err != nil {
		return err
	}
	w, finish, err := output(ctx, e, *out)
	if err != nil {
		return err
	}
	return finish(write(ctx, store, filter, w))
}

// afterWithinHead refuses an --after beyond the log's head, as the HTTP
// history does (412): a position of before a restore of an older copy, or
// a typo, which would export nothing.
func afterWithinHead(ctx context.Context, log domain.EventReader, after int64) error {
	head, err := log.LastPosition(ctx)
	if err != nil {
		return err
	}
	if after > head {
		return usageErr("--after %d is beyond this log's head %d (the log was restored from an older copy, or the position is not of this log)", after, head)
	}
	return nil
}

func historyFilter(user, target, kind, since, until string, after int64, limit int) (domain.EventFilter, error) {
	var f domain.EventFilter
	var err error
	if after < 0 {
		return f, usageErr("--after %d: must be >= 0", after)
	}
	if limit < 0 {
		return f, usageErr("--limit %d: must be >= 0", limit)
	}
	f.After, f.Limit = after, limit
	if user != "" {
		if f.User, err = domain.NewUserID(user); err != nil {
			return f, usageErr("--user: %v", err)
		}
	}
	if target != "" {
		t, err := domain.ParseTarget(target)
		if err != nil {
			return f, usageErr("--target: %v", err)
		}
		f.TargetType, f.TargetID = t.Type(), t.ID()
	}
	if kind != "" {
		if f.Kind, err = domain.ParseKind(kind); err != nil {
			return f, usageErr("--kind: %v", err)
		}
	}
	s, err := parseTime("since", since)
	if err != nil {
		return f, err
	}
	u, err := parseTime("until", until)
	if err != nil {
		return f, err
	}
	if f.Since, f.Until, err = domain.TimeBounds(s, u); err != nil {
		return f, usageErr("--until: %v", err)
	}
	return f, nil
}

type writeFunc func(ctx context.Context, s domain.EventReader, f domain.EventFilter, w io.Writer) error

func eventWriter(format string) (writeFunc, error) {
	switch format {
	case "ndjson":
		return writeNDJSON, nil
	case "json":
		return writeJSONArray, nil
	case "csv":
		return writeCSV, nil
	}
	return nil, usageErr("--format %q: want json, ndjson or csv", format)
}

func writeNDJSON(ctx context.Context, s domain.EventReader, f domain.EventFilter, w io.Writer) error {
	for ev, err := range s.ReadEvents(ctx, f) {
		if err != nil {
			return err
		}
		if _, err := w.Write(append(eventcodec.MarshalEvent(ev), '\n')); err != nil {
			return err
		}
	}
	return nil
}

func writeJSONArray(ctx context.Context, s domain.EventReader, f domain.EventFilter, w io.Writer) error {
	sep := "[\n"
	for ev, err := range s.ReadEvents(ctx, f) {
		if err != nil {
			return err
		}
		if _, err := io.WriteString(w, sep); err != nil {
			return err
		}
		sep = ",\n"
		if _, err := w.Write(eventcodec.MarshalEvent(ev)); err != nil {
			return err
		}
	}
	end := "\n]\n"
	if sep == "[\n" {
		end = "[]\n"
	}
	_, err := io.WriteString(w, end)
	return err
}

func writeCSV(ctx context.Context, s domain.EventReader, f domain.EventFilter, w io.Writer) error {
	cw := eventcodec.NewCSVWriter(w)
	for ev, err := range s.ReadEvents(ctx, f) {
		if err != nil {
			return err
		}
		if err := cw.Write(ev); err != nil {
			return err
		}
	}
	return cw.Flush()
}
