package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/interactionledger/ledger/domain"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. File names
// start with their version number: 0001_init.sql.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", e.Name())
		}
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	return out, nil
}

// migrate applies the migrations not yet recorded in schema_migrations, all
// in one IMMEDIATE transaction, so a concurrent opener waits and then
// finds them applied. A log migrated by a newer build (a version this one
// does not know) is refused with domain.ErrUnavailable: this build would
// write it without what the newer one keeps beside the log. Foreign keys
// are off while it runs (SQLite's procedure for rebuilding a table: the
// logs of the first builds declared events.stream_key a foreign key, which
// dropping the old streams table would violate) and checked before the
// commit.
func migrate(ctx context.Context, conn *sql.Conn, log *slog.Logger) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	// Only outside a transaction does this pragma take effect.
	if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
		return fmt.Errorf("migrate: %w", translate(err))
	}
	defer func() { _, _ = conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON") }()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("migrate: %w", translate(err))
	}
	from, to, err := applyMigrations(ctx, conn, all, log)
	if err == nil && from != to {
		err = foreignKeyCheck(ctx, conn)
	}
	if err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("migrate: %w", translate(err))
	}
	start := time.Now()
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return fmt.Errorf("migrate: commit: %w", translate(err))
	}
	if from != to {
		log.InfoContext(ctx, "migrated the event log's schema", "from", from, "to", to, "commit", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// foreignKeyCheck fails when a foreign key a log declares is violated.
func foreignKeyCheck(ctx context.Context, conn *sql.Conn) error {
	rows, err := conn.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		return err
	}
	defer rows.Close()
	if rows.Next() {
		var table string
		var rowid sql.NullInt64
		var parent string
		var fkid int64
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return err
		}
		return fmt.Errorf("a row of %s (rowid %d) has no %s row: %w", table, rowid.Int64, parent, domain.ErrUnavailable)
	}
	return rows.Err()
}

// applyMigrations applies those of all after the recorded version, and
// returns the versions it went from and to.
func applyMigrations(ctx context.Context, conn *sql.Conn, all []migration, log *slog.Logger) (from, to int, err error) {
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return 0, 0, err
	}
	current, err := schemaVersion(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	if n := len(all); n > 0 && current > all[n-1].version {
		return current, current, fmt.Errorf("the log's schema is at version %d, and this build knows %d: "+
			"a newer build migrated it; run that build (an older one would write the log without what it keeps beside it): %w",
			current, all[n-1].version, domain.ErrUnavailable)
	}
	to = current
	for _, m := range all {
		if m.version <= current {
			continue
		}
		log.InfoContext(ctx, "migrating the event log's schema", "migration", m.name)
		start := time.Now()
		if _, err := conn.ExecContext(ctx, m.sql); err != nil {
			return current, to, fmt.Errorf("%s: %w", m.name, err)
		}
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, time.Now().UnixNano()); err != nil {
			return current, to, fmt.Errorf("%s: %w", m.name, err)
		}
		log.InfoContext(ctx, "applied", "migration", m.name, "took", time.Since(start).Round(time.Millisecond))
		to = m.version
	}
	return current, to, nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func schemaVersion(ctx context.Context, q queryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

// latestVersion is the version the embedded migrations lead to.
func latestVersion() (int, error) {
	all, err := migrations()
	if err != nil || len(all) == 0 {
		return 0, err
	}
	return all[len(all)-1].version, nil
}
