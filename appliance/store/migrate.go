package store

import (
	"context"
	"database/sql"
	"embed"

	"github.com/outpost-voice/outpost/internal/sqlitemig"
)

// ErrSchemaTooNew marks a database written by a newer version of outpost.
var ErrSchemaTooNew = sqlitemig.ErrSchemaTooNew

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations is every embedded migration in version order.
var migrations = sqlitemig.MustLoad(migrationFiles)

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int { return sqlitemig.Latest(migrations) }

// schemaVersion is the highest version recorded in schema_migrations.
func schemaVersion(ctx context.Context, q querier) (version int, hasTable bool, err error) {
	return sqlitemig.Version(ctx, q)
}

// migrate brings db's schema up to date, one transaction per migration, and
// returns the versions before and after. db must be a writer from openWriter.
func migrate(ctx context.Context, db *sql.DB) (from, to int, err error) {
	return sqlitemig.Migrate(ctx, db, migrations, "run a newer outpost or restore a backup made by this version")
}
