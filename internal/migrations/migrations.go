package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one SQL file: its version (the number its name starts
// with), its name and its statements.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load returns the migrations in dir of fsys in version order. File names
// start with their version number: 0001_init.sql.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, err
	}
	out := make([]Migration, 0, len(entries))
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	slices.SortFunc(out, func(a, b Migration) int { return a.Version - b.Version })
	return out, nil
}

// Remedy tells a reader of a log at schema version got, which this build
// (at want) does not read, what to do.
func Remedy(got, want int) string {
	if got < want {
		return "; run `ledger serve` (or `ledger import`) on it once to migrate it"
	}
	return "; a newer build migrated it: read it with that build"
}

// Newer words the refusal of a store opened for writing (serve, import)
// at a schema version got beyond the last one this build knows, want.
func Newer(got, want int) string {
	return fmt.Sprintf("at version %d, and this build knows %d: a newer build migrated it; run that build "+
		"(an older one would write the log without what it keeps beside it)", got, want)
}
