package store_test

import (
	"context"
	"io/fs"
	"strconv"
	"strings"
	"testing"

	"github.com/authgpts/authgpts/migrations"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

func TestMigrate_UpDownUp(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	files, _ := fs.Glob(migrations.FS, "*.sql")

	p, err := store.NewMigrator(s.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(ctx, 0); err != nil {
		t.Fatalf("down to 0: %v", err)
	}
	if v, _ := p.GetDBVersion(ctx); v != 0 {
		t.Fatalf("version after down = %d, want 0", v)
	}
	v, err := store.Migrate(ctx, s.DB().DB)
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	var highest int64
	for _, f := range files {
		n, err := strconv.ParseInt(strings.SplitN(f, "_", 2)[0], 10, 64)
		if err != nil {
			t.Fatalf("migration %s is not named NNNNN_name.sql", f)
		}
		highest = max(highest, n)
	}
	if v != highest {
		t.Errorf("version = %d, want %d (the highest migration)", v, highest)
	}
}
