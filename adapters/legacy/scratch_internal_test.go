package legacy

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestScratchCommitFailureNamesTheDirectory: a scratch transaction whose
// commit fails (as a full temporary directory makes it fail, the pages
// being written only then) says that the scratch database in its
// directory failed, not only SQLite's message, which would read as the
// event log's.
func TestScratchCommitFailureNamesTheDirectory(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	ctx := context.Background()
	s, err := openScratch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	// A deferred foreign key is checked at the commit: it fails there.
	if _, err := s.conn.ExecContext(ctx, `PRAGMA foreign_keys = ON; CREATE TABLE parent (id INTEGER PRIMARY KEY);
		CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`); err != nil {
		t.Fatal(err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO child VALUES (1)`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "scratch database in "+s.dir) {
		t.Fatalf("failed commit: %v, want it to name the scratch database in %s", err, s.dir)
	}
}

// TestOpenScratchRemovesAbandonedDirectories: a scratch directory left by
// an import killed outright (its pid runs no process) is removed by the
// next import; one of a live import (this test's pid), one of another
// boot or PID namespace, one of an older version (no pid), one that is a
// file and one of another user are left. Nothing removed them before:
// each killed import's directory stayed in the temporary directory.
func TestOpenScratchRemovesAbandonedDirectories(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	self := scratchOwner()
	if self == "" {
		t.Fatal("no boot id or PID namespace in /proc: the sweep needs Linux's")
	}
	dead := deadPid(t)
	otherBoot := "0123456789abcdef0123456789abcdef" + self[strings.Index(self, "-"):]
	otherNS := self[:strings.Index(self, "-")] + "-1-"
	kept := []string{
		scratchPrefix + self + strconv.Itoa(os.Getpid()) + "-1",
		scratchPrefix + otherBoot + strconv.Itoa(dead) + "-2",
		scratchPrefix + otherNS + strconv.Itoa(dead) + "-3",
		scratchPrefix + "4",
	}
	gone := scratchPrefix + self + strconv.Itoa(dead) + "-5"
	for _, name := range append(kept, gone) {
		mustScratchDir(t, filepath.Join(tmp, name))
	}
	file := scratchPrefix + self + strconv.Itoa(dead) + "-6"
	if err := os.WriteFile(filepath.Join(tmp, file), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	kept = append(kept, file)
	// Another user's: only root can give a directory away.
	if others := scratchPrefix + self + strconv.Itoa(dead) + "-7"; os.Geteuid() == 0 {
		mustScratchDir(t, filepath.Join(tmp, others))
		if err := os.Chown(filepath.Join(tmp, others), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		kept = append(kept, others)
	}
	s, err := openScratch(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	for _, name := range kept {
		if _, err := os.Lstat(filepath.Join(tmp, name)); err != nil {
			t.Errorf("%s was removed: %v", name, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(tmp, gone)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s, left by a dead import, is still there: %v", gone, err)
	}
	if want := scratchPrefix + self + strconv.Itoa(os.Getpid()) + "-"; !strings.HasPrefix(filepath.Base(s.dir), want) {
		t.Errorf("scratch directory %s, want its name to start with %s", s.dir, want)
	}
}

// deadPid is the pid of a process that has ended: a child of this test.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// mustScratchDir makes dir with a scratch file in it.
func mustScratchDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plan.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}
