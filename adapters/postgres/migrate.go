package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/interactionledger/ledger/domain"
	"github.com/interactionledger/ledger/internal/migrations"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

type migration = migrations.Migration

// embedded returns the embedded migrations in version order.
func embedded() ([]migration, error) { return migrations.Load(migrationFS, "migrations") }

// lockKey is the advisory lock of a schema's migrations: processes
// migrating other schemas do not wait for each other.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ledger migrations " + schema))
	return int64(h.Sum64())
}

// migrate creates schema and applies the migrations not yet recorded in
// its schema_migrations, holding a session advisory lock so that processes
// starting at once apply each migration exactly once: the others wait and
// then find it recorded. Each migration runs in its own transaction with
// its record. A database migrated by a newer build (a version this one
// does not know) is refused with domain.ErrUnavailable.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	all, err := embedded()
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", translate(ctx, err))
	}
	defer conn.Release()
	key := lockKey(schema)
	if err := lockMigrations(ctx, conn, schema, key, log); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// Unlocks even when ctx has ended; a lost connection drops the lock.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
	}()
	if err := applyMigrations(ctx, conn.Conn(), schema, all, log); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// lockMigrations takes the advisory lock of schema's migrations, saying
// so first when another process holds it: it may be applying a migration
// that rebuilds an index, for as long as the build takes.
func lockMigrations(ctx context.Context, conn *pgxpool.Conn, schema string, key int64, log *slog.Logger) error {
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&got); err != nil || got {
		return translate(ctx, err)
	}
	log.InfoContext(ctx, "waiting for another process to migrate the event log's schema", "schema", schema)
	_, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key)
	return translate(ctx, err)
}

func applyMigrations(ctx context.Context, conn *pgx.Conn, schema string, all []migration, log *slog.Logger) error {
	ident := pgx.Identifier{schema}.Sanitize()
	// Checked first: CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege
	// on the database even when the schema exists (made by an
	// administrator for a role without it).
	var exists bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists)
	if err != nil {
		return translate(ctx, err)
	}
	setup := `CREATE TABLE IF NOT EXISTS ` + ident + `.schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)`
	if !exists {
		setup = `CREATE SCHEMA IF NOT EXISTS ` + ident + `; ` + setup
	}
	if _, err := conn.Exec(ctx, setup); err != nil {
		return translate(ctx, err)
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+ident+`.schema_migrations`).Scan(&current); err != nil {
		return translate(ctx, err)
	}
	if n := len(all); n > 0 && current > all[n-1].Version {
		return fmt.Errorf("schema %s is %s: %w", schema, migrations.Newer(current, all[n-1].Version), domain.ErrUnavailable)
	}
	for _, m := range all {
		if m.Version <= current {
			continue
		}
		log.InfoContext(ctx, "migrating the event log's schema", "schema", schema, "migration", m.Name)
		start := time.Now()
		if err := applyOne(ctx, conn, ident, m); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		log.InfoContext(ctx, "applied", "schema", schema, "migration", m.Name, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// checkVersion checks that schema holds a store migrated to this build's
// latest version: domain.ErrNotFound when it holds none,
// domain.ErrUnavailable when it is at another version.
func checkVersion(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	all, err := embedded()
	if err != nil {
		return err
	}
	var got int
	err = pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+
		pgx.Identifier{schema, "schema_migrations"}.Sanitize()).Scan(&got)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == codeUndefinedTable || pe.Code == codeUndefinedSchema) {
		return fmt.Errorf("no ledger store in schema %s: %w", schema, domain.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read schema version: %w", translate(ctx, err))
	}
	if want := all[len(all)-1].Version; got != want {
		return fmt.Errorf("schema %s is at version %d, this build reads %d%s: %w", schema, got, want, migrations.Remedy(got, want), domain.ErrUnavailable)
	}
	return nil
}

// applyOne runs m and records it in one transaction; the connection's
// search_path is the schema, so the migration names tables unqualified.
// A statement_timeout the URL sets is meant for requests: a migration
// that rebuilds an index runs for as long as its table takes (3.6 s per
// million streams for 0003), and cancelled it would fail every start.
func applyOne(ctx context.Context, conn *pgx.Conn, ident string, m migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL statement_timeout = 0"); err != nil {
			return translate(ctx, err)
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return translate(ctx, err)
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+ident+`.schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now())
		return translate(ctx, err)
	})
}
