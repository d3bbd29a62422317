// Package sqlitemig applies numbered SQL migrations to a SQLite database:
// the one schema-versioning scheme of the appliance's store and of
// outpost-cloud's. Migrations are files migrations/NNNN_name.sql, versions
// 1, 2, 3... without gaps, each applied in its own transaction and recorded
// in schema_migrations.
package sqlitemig

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrSchemaTooNew marks a database written by a newer binary.
var ErrSchemaTooNew = errors.New("database schema is newer than this binary supports")

// Migration is one numbered schema change.
type Migration struct {
	Version int
	Name    string // file name, e.g. 0001_config.sql
	SQL     string
}

// MustLoad is Load for embedded migrations: a malformed set is a
// programming error (the tests catch it).
func MustLoad(fsys fs.FS) []Migration {
	ms, err := Load(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// Load reads migrations/NNNN_name.sql files and checks that their versions
// run 1, 2, 3... without gaps.
func Load(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil || version <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", base, err)
		}
		ms = append(ms, Migration{Version: version, Name: base, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d (versions must run 1, 2, 3... without gaps)", m.Name, m.Version, i+1)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations embedded")
	}
	return ms, nil
}

// Latest is the newest version of ms.
func Latest(ms []Migration) int { return ms[len(ms)-1].Version }

// CreateTable creates schema_migrations when it is missing.
const CreateTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT`

// Querier is what Version reads through (a *sql.DB, *sql.Conn or *sql.Tx).
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Version is the highest version recorded in schema_migrations; 0 for a
// database that has none applied. hasTable reports whether the table
// exists.
func Version(ctx context.Context, q Querier) (version int, hasTable bool, err error) {
	var n int
	err = q.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	if n == 0 {
		return 0, false, nil
	}
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, true, fmt.Errorf("read schema version: %w", err)
	}
	return version, true, nil
}

// Migrate brings db's schema up to date with ms, one transaction per
// migration, and returns the versions before and after. advice ends the
// error for a database newer than ms ("run a newer outpost", ...).
func Migrate(ctx context.Context, db *sql.DB, ms []Migration, advice string) (from, to int, err error) {
	if _, err := db.ExecContext(ctx, CreateTable); err != nil {
		return 0, 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	from, _, err = Version(ctx, db)
	if err != nil {
		return 0, 0, err
	}
	latest := Latest(ms)
	if from > latest {
		return from, from, fmt.Errorf("%w: database is at version %d, this binary knows up to %d; %s",
			ErrSchemaTooNew, from, latest, advice)
	}
	for _, m := range ms[from:] {
		if err := Apply(ctx, db, m); err != nil {
			return from, m.Version - 1, err
		}
	}
	return from, latest, nil
}

// Apply applies one migration in its own transaction and records it.
func Apply(ctx context.Context, db *sql.DB, m Migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %s: begin: %w", m.Name, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("migration %s: record: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %s: commit: %w", m.Name, err)
	}
	return nil
}
