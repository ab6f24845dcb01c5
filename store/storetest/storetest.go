// Package storetest gives each test its own migrated PostgreSQL database, cloned from a
// template that is built once per set of migrations (the pgtestdb technique).
package storetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq"

	"github.com/authgpts/authgpts/migrations"
	"github.com/authgpts/authgpts/store"
)

// NewDB returns a Store on a fresh database migrated to the latest version. The database
// is dropped when the test passes and kept, with its URL logged, when it fails.
func NewDB(t testing.TB) *store.Store {
	t.Helper()
	dsn := NewDSN(t)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", redact(dsn), err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewDSN creates a fresh migrated database and returns its URL, for tests that start a
// whole server process or need their own pool.
func NewDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		t.Fatal("storetest: DATABASE_URL is not set; run the tests with `make test`, which starts a throwaway PostgreSQL")
	}
	return NewDSNOn(t, base)
}

// NewDSNOn is NewDSN on the server base names (a cluster of the test's own, NewCluster),
// rather than on DATABASE_URL's.
func NewDSNOn(t testing.TB, base string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := sqlx.Open("postgres", base)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	defer admin.Close()

	tmpl, err := ensureTemplate(ctx, admin, base)
	if err != nil {
		t.Fatalf("storetest: template: %v", err)
	}
	name := "test_" + sanitize(t.Name()) + "_" + randomSuffix()
	if _, err := admin.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %q TEMPLATE %q`, name, tmpl)); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	dsn := withDatabase(base, name)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("storetest: kept database for inspection: %s", redact(dsn))
			return
		}
		db, err := sqlx.Open("postgres", base)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = db.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q WITH (FORCE)`, name))
	})
	return dsn
}

// ensureTemplate builds the migrated template database once per migration set, under an
// advisory lock so parallel test packages don't race.
func ensureTemplate(ctx context.Context, admin *sqlx.DB, base string) (string, error) {
	name := "authgpts_tmpl_" + migrationsHash()
	conn, err := admin.Connx(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(hashtext('authgpts_storetest'))`); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(hashtext('authgpts_storetest'))`)

	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	building := name + "_build"
	_, _ = conn.ExecContext(ctx, fmt.Sprintf(`DROP DATABASE IF EXISTS %q`, building))
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %q`, building)); err != nil {
		return "", err
	}
	db, err := sqlx.Open("postgres", withDatabase(base, building))
	if err != nil {
		return "", err
	}
	_, migErr := store.Migrate(ctx, db.DB)
	db.Close()
	if migErr != nil {
		return "", migErr
	}
	// Rename only once complete, so a crash mid-build never leaves a half-migrated template.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`ALTER DATABASE %q RENAME TO %q`, building, name)); err != nil {
		return "", err
	}
	return name, nil
}

func migrationsHash() string {
	h := sha256.New()
	_ = fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + name
	return u.String()
}

func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparseable DATABASE_URL)"
	}
	return u.Redacted()
}

func sanitize(name string) string {
	name = strings.ToLower(name)
	var b strings.Builder
	for _, r := range name {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
		if b.Len() >= 30 {
			break
		}
	}
	return b.String()
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + fmt.Sprint(time.Now().UnixNano()%1000)
}
