package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/authgpts/authgpts/migrations"
)

// NewMigrator returns a goose provider over the embedded migrations. A PostgreSQL session
// advisory lock serialises instances that start together.
func NewMigrator(db *sql.DB) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("store: migration lock: %w", err)
	}
	return goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
}

// Migrate applies every pending migration and returns the resulting version.
func Migrate(ctx context.Context, db *sql.DB) (int64, error) {
	p, err := NewMigrator(db)
	if err != nil {
		return 0, err
	}
	if _, err := p.Up(ctx); err != nil {
		return 0, fmt.Errorf("store: migrate: %w", err)
	}
	return p.GetDBVersion(ctx)
}
