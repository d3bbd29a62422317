package cloud

import (
	"context"
	"database/sql"
	"embed"

	"github.com/outpost-voice/outpost/internal/sqlitemig"
)

// ErrSchemaTooNew marks a database written by a newer outpost-cloud.
var ErrSchemaTooNew = sqlitemig.ErrSchemaTooNew

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations is every embedded migration in version order.
var migrations = sqlitemig.MustLoad(migrationFiles)

// SchemaVersion is the newest schema version this binary knows.
func SchemaVersion() int { return sqlitemig.Latest(migrations) }

// migrate brings db's schema up to date and returns the versions before and
// after.
func migrate(ctx context.Context, db *sql.DB) (from, to int, err error) {
	return sqlitemig.Migrate(ctx, db, migrations, "run a newer outpost-cloud")
}
