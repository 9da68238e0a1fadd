package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"time"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration = migrations.Migration

// embedded returns the embedded migrations in version order.
func embedded() ([]migration, error) { return migrations.Load(migrationFS, "migrations") }

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
	all, err := embedded()
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
	if err := holdsALog(ctx, conn); err != nil {
		return 0, 0, err
	}
	if _, err := conn.ExecContext(ctx, create); err != nil {
		return 0, 0, err
	}
	current, err := schemaVersion(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	if n := len(all); n > 0 && current > all[n-1].Version {
		return current, current, fmt.Errorf("the log's schema is %s: %w", migrations.Newer(current, all[n-1].Version), domain.ErrUnavailable)
	}
	to = current
	for _, m := range all {
		if m.Version <= current {
			continue
		}
		log.InfoContext(ctx, "migrating the event log's schema", "migration", m.Name)
		start := time.Now()
		if _, err := conn.ExecContext(ctx, m.SQL); err != nil {
			return current, to, fmt.Errorf("%s: %w", m.Name, err)
		}
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixNano()); err != nil {
			return current, to, fmt.Errorf("%s: %w", m.Name, err)
		}
		log.InfoContext(ctx, "applied", "migration", m.Name, "took", time.Since(start).Round(time.Millisecond))
		to = m.Version
	}
	return current, to, nil
}

// holdsALog refuses a file with tables but no schema_migrations: a views
// file, an as-of file or another program's database, into which the
// migrations would write a log beside its tables. An empty file is a new log.
func holdsALog(ctx context.Context, conn queryer) error {
	var migrated int
	var other sql.NullString
	err := conn.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'),
		(SELECT min(name) FROM sqlite_master WHERE type = 'table')`).Scan(&migrated, &other)
	if err != nil {
		return err
	}
	if migrated == 0 && other.Valid {
		return fmt.Errorf("the file holds tables (%s, …) but no event log: a views file, an as-of file or another database: %w",
			other.String, domain.ErrInvalidInput)
	}
	return nil
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
	all, err := embedded()
	if err != nil || len(all) == 0 {
		return 0, err
	}
	return all[len(all)-1].Version, nil
}
