package migrations_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/interactionledger/ledger/internal/migrations"
)

// Load orders migrations by the number their names start with (not by
// name: 10 after 9) and refuses a name without one.
func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0010_ten.sql": {Data: []byte("ten")},
		"m/9_nine.sql":   {Data: []byte("nine")},
		"m/0001_one.sql": {Data: []byte("one")},
	}
	all, err := migrations.Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range all {
		got = append(got, m.Name+"="+m.SQL)
	}
	if strings.Join(got, " ") != "0001_one.sql=one 9_nine.sql=nine 0010_ten.sql=ten" {
		t.Fatalf("loaded %v", got)
	}
	fsys["m/init.sql"] = &fstest.MapFile{Data: []byte("x")}
	if _, err := migrations.Load(fsys, "m"); err == nil || !strings.Contains(err.Error(), "init.sql") {
		t.Fatalf("a name without a number: %v", err)
	}
}

func TestRemedy(t *testing.T) {
	if !strings.Contains(migrations.Remedy(3, 4), "migrate it") || !strings.Contains(migrations.Remedy(5, 4), "newer build") {
		t.Fatal(migrations.Remedy(3, 4), migrations.Remedy(5, 4))
	}
}

func TestNewer(t *testing.T) {
	if got := migrations.Newer(5, 4); !strings.Contains(got, "version 5") || !strings.Contains(got, "knows 4") || !strings.Contains(got, "a newer build migrated it; run that build") {
		t.Fatal(got)
	}
}
