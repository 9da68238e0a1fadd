package main

import (
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// citedTest is a test named in the documents, with the package written
// just before it when there is one (`adapters/sqlite` `TestDurableByDefault`)
// and a trailing * when it stands for every test of that prefix.
var citedTest = regexp.MustCompile("(?:`([a-z][a-z/]*)` )?`((?:Test|Fuzz|Example)[A-Za-z0-9_]*)(\\*?)`")

// testFunc is the declaration of a test, fuzz target or example.
var testFunc = regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Example)\w*)\(`)

// TestDocsNameExistingTests keeps the tests that README.md and docs/*.md
// cite (the Guarantees table names the test behind each promise, the
// sections the test that keeps them true) declared: one written after its
// package in that package's test files, any other in some test file of
// the module, and `TestX*` as a prefix of at least one. A test renamed or
// deleted left its promise citing a test that no longer ran.
func TestDocsNameExistingTests(t *testing.T) {
	declared := declaredTests(t, "../..")
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range append([]string{"../../README.md"}, docs...) {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(doc, "../../")
		for _, m := range citedTest.FindAllStringSubmatch(string(text), -1) {
			pkg, test, prefix := m[1], m[2], m[3] == "*"
			dirs := testDirs(declared, pkg)
			if len(dirs) == 0 {
				t.Errorf("%s cites `%s` `%s`: no package %s with tests", name, pkg, test, pkg)
				continue
			}
			if !declaredIn(declared, dirs, test, prefix) {
				t.Errorf("%s cites %s%s, which %s declares in no test file", name, test, m[3], orModule(pkg))
			}
		}
	}
}

// declaredTests maps each directory under root (slash-separated, relative
// to it) to the tests its _test.go files declare.
func declaredTests(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(rel)
		for _, m := range testFunc.FindAllStringSubmatch(string(src), -1) {
			out[dir] = append(out[dir], m[1])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testDirs returns the directories pkg names (a path, or the last element
// of one: `httpapi` for adapters/httpapi), or every one when pkg is empty.
func testDirs(declared map[string][]string, pkg string) []string {
	var dirs []string
	for dir := range declared {
		if pkg == "" || dir == pkg || strings.HasSuffix(dir, "/"+pkg) {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

// declaredIn reports whether one of dirs declares test (or, with prefix, a
// test whose name starts with it).
func declaredIn(declared map[string][]string, dirs []string, test string, prefix bool) bool {
	for _, dir := range dirs {
		for _, name := range declared[dir] {
			if name == test || prefix && strings.HasPrefix(name, test) {
				return true
			}
		}
	}
	return false
}

// orModule names where a test was looked for: pkg, or the whole module.
func orModule(pkg string) string {
	if pkg == "" {
		return "the module"
	}
	return pkg
}

// TestViewsTablesMatchREADME keeps README's table of the tables of an
// as-of file (and of the live views file) equal to what asof and rebuild
// write: the same tables, each with its columns in order.
func TestViewsTablesMatchREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := readmeViewsTables(t, string(readme))
	_, _, views, asof := filesThatAreNoLog(t)
	for _, file := range []string{asof, views} {
		written := sqliteTables(t, file)
		for table, cols := range written {
			if doc, ok := documented[table]; !ok {
				t.Errorf("%s: table %s (%s) is not in README's table", filepath.Base(file), table, cols)
			} else if doc != cols {
				t.Errorf("%s: table %s has the columns %s, README shows %s", filepath.Base(file), table, cols, doc)
			}
		}
		for table := range documented {
			if _, ok := written[table]; !ok {
				t.Errorf("%s: README shows the table %s, which the file does not hold", filepath.Base(file), table)
			}
		}
	}
}

// readmeViewsTables reads README's table headed "| table | columns | one
// row per |": table name → its columns as written ("a, b, c").
func readmeViewsTables(t *testing.T, readme string) map[string]string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n| table | columns | one row per |\n")
	if !ok {
		t.Fatal("README has no table headed | table | columns | one row per |")
	}
	out := map[string]string{}
	for line := range strings.Lines(after) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`") {
			continue // the rule
		}
		out[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.Trim(strings.TrimSpace(cells[2]), "`")
	}
	return out
}

// sqliteTables returns the tables of the SQLite file (SQLite's own left
// out): name → columns in order, comma-separated.
func sqliteTables(t *testing.T, file string) map[string]string {
	t.Helper()
	conn, err := sql.Open("sqlite3", "file:"+file+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(`SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols := map[string][]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		cols[table] = append(cols[table], col)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for table, c := range cols {
		out[table] = strings.Join(c, ", ")
	}
	return out
}

// TestSubcommandTableMatchesCommands keeps README's table of subcommands
// (under Command line) equal to the subcommands ledger runs, in the order
// its help lists them.
func TestSubcommandTableMatchesCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n| subcommand | what it does |\n")
	if !ok {
		t.Fatal("README has no table headed | subcommand | what it does |")
	}
	var documented, run []string
	for line := range strings.Lines(after) {
		if !strings.HasPrefix(line, "|") {
			break
		}
		if _, cell, ok := strings.Cut(line, "| `"); ok { // not the rule
			name, _, _ := strings.Cut(cell, " ")
			documented = append(documented, strings.Trim(name, "`"))
		}
	}
	for _, c := range commands {
		run = append(run, c.name)
	}
	if !slices.Equal(documented, run) {
		t.Errorf("README's subcommand table lists %v, ledger runs %v", documented, run)
	}
}
