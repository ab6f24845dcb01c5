package store_test

import (
	"context"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

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

// contractMarker in a migration file acknowledges that it removes or changes what the
// previous release stopped using, so the backward-compatibility check lets it through.
const contractMarker = "-- authgpts:contract"

// TestMigrate_NewestIsBackwardCompatible: old instances keep running while the newest
// migration is applied (a rolling upgrade), so the newest migration must be additive:
// it may add tables, columns with a default or nullable, indexes and constraints, but
// not drop, rename, retype or tighten what the previous release reads and writes. It
// is checked twice: by reading its Up section (newestIncompatibilities), and by
// migrating to the version before it, applying it, and comparing the schema.
func TestMigrate_NewestIsBackwardCompatible(t *testing.T) {
	files, _ := fs.Glob(migrations.FS, "*.sql")
	slices.Sort(files)
	if len(files) < 2 {
		t.Skip("one migration: nothing was released before it")
	}
	newest, previous := files[len(files)-1], files[len(files)-2]
	body, err := fs.ReadFile(migrations.FS, newest)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(body), contractMarker) {
		t.Skipf("%s is marked %q: it removes what the previous release stopped using", newest, contractMarker)
	}
	for _, problem := range newestIncompatibilities(upSection(string(body))) {
		t.Errorf("%s %s; old instances still use the schema while it is applied. Make it additive and remove things one release later (README, Upgrading)", newest, problem)
	}

	s := storetest.NewDB(t)
	ctx := context.Background()
	p, err := store.NewMigrator(s.DB().DB)
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := strconv.ParseInt(strings.SplitN(previous, "_", 2)[0], 10, 64)
	if _, err := p.DownTo(ctx, prev); err != nil {
		t.Fatalf("down to %d: %v", prev, err)
	}
	before := schemaOf(t, s.DB())
	if _, err := p.Up(ctx); err != nil {
		t.Fatalf("apply %s: %v", newest, err)
	}
	for _, problem := range schemaIncompatibilities(before, schemaOf(t, s.DB())) {
		t.Errorf("%s %s", newest, problem)
	}
}

// upSection returns the goose Up section of a migration, without comments.
func upSection(sql string) string {
	up, _, _ := strings.Cut(sql, "-- +goose Down")
	var b strings.Builder
	for _, line := range strings.Split(up, "\n") {
		code, _, _ := strings.Cut(line, "--")
		b.WriteString(code + "\n")
	}
	return b.String()
}

var (
	reDrop        = regexp.MustCompile(`\bDROP\s+(\w+)(\s+(?:IF\s+EXISTS\s+)?(?:CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?"?([\w.]+)"?)?`)
	reCreateIndex = regexp.MustCompile(`\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?"?([\w.]+)"?`)
	reRetype      = regexp.MustCompile(`\bALTER\s+(?:COLUMN\s+)?"?\w+"?\s+(?:SET\s+DATA\s+)?TYPE\b`)
	reIncompat    = map[string]*regexp.Regexp{
		"renames something (RENAME)":             regexp.MustCompile(`\bRENAME\b`),
		"makes a column NOT NULL (SET NOT NULL)": regexp.MustCompile(`\bSET\s+NOT\s+NULL\b`),
		"empties a table (TRUNCATE)":             regexp.MustCompile(`\bTRUNCATE\b`),
		"changes a column's type (ALTER … TYPE)": reRetype,
	}
)

// newestIncompatibilities lists what in an Up section breaks instances of the previous
// release: DROP of anything but NOT NULL (relaxing) or an index the section creates again
// under the same name, RENAME, ALTER … TYPE, SET NOT NULL, TRUNCATE.
func newestIncompatibilities(up string) []string {
	u := strings.ToUpper(up)
	recreated := map[string]bool{}
	for _, m := range reCreateIndex.FindAllStringSubmatch(u, -1) {
		recreated[m[1]] = true
	}
	var out []string
	for _, m := range reDrop.FindAllStringSubmatch(u, -1) {
		switch {
		case m[1] == "NOT": // DROP NOT NULL relaxes
		case m[1] == "INDEX" && recreated[m[3]]: // replaced in the same migration
		default:
			out = append(out, "drops something ("+strings.Join(strings.Fields(m[0]), " ")+")")
		}
	}
	for what, re := range reIncompat {
		if re.MatchString(u) {
			out = append(out, what)
		}
	}
	slices.Sort(out)
	return out
}

// column is one column of the public schema as the compatibility check compares it.
type column struct {
	Table    string  `db:"table_name"`
	Name     string  `db:"column_name"`
	Type     string  `db:"udt_name"`
	Nullable string  `db:"is_nullable"`
	Default  *string `db:"column_default"`
	Identity string  `db:"is_identity"`
}

type schema struct {
	tables  map[string]bool   // tables and views
	columns map[string]column // "table.column"
}

// schemaOf reads the public schema's tables, views and columns, on the pool or in a
// transaction.
func schemaOf(t *testing.T, q sqlx.Queryer) schema {
	t.Helper()
	sc := schema{tables: map[string]bool{}, columns: map[string]column{}}
	var tables []string
	if err := sqlx.Select(q, &tables, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`); err != nil {
		t.Fatal(err)
	}
	for _, n := range tables {
		sc.tables[n] = true
	}
	var cols []column
	if err := sqlx.Select(q, &cols, `SELECT table_name, column_name, udt_name, is_nullable, column_default, is_identity
		  FROM information_schema.columns WHERE table_schema = 'public'`); err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		sc.columns[c.Table+"."+c.Name] = c
	}
	return sc
}

// schemaIncompatibilities compares the schema before and after a migration: every table
// and column stays, with its type, nullable columns stay nullable, NOT NULL columns keep
// their default, and a column added to an existing table is nullable or has a default
// (old instances insert without it).
func schemaIncompatibilities(before, after schema) []string {
	var out []string
	for n := range before.tables {
		if !after.tables[n] {
			out = append(out, "removes table "+n)
		}
	}
	for k, b := range before.columns {
		a, ok := after.columns[k]
		switch {
		case !ok:
			if after.tables[b.Table] {
				out = append(out, "removes column "+k)
			}
		case a.Type != b.Type:
			out = append(out, "changes the type of "+k+" from "+b.Type+" to "+a.Type)
		case b.Nullable == "YES" && a.Nullable == "NO":
			out = append(out, "makes "+k+" NOT NULL")
		case b.Default != nil && a.Default == nil && a.Nullable == "NO":
			out = append(out, "removes the default of "+k+", which is NOT NULL")
		}
	}
	for k, a := range after.columns {
		if _, existed := before.columns[k]; existed || !before.tables[a.Table] {
			continue
		}
		if a.Nullable == "NO" && a.Default == nil && a.Identity != "YES" {
			out = append(out, "adds "+k+" NOT NULL without a default to an existing table")
		}
	}
	slices.Sort(out)
	return out
}

// The checker itself: what it refuses and what it lets through.
func TestMigrate_CompatibilityCheckRefusesBreakingChanges(t *testing.T) {
	for _, tc := range []struct {
		up   string
		want bool // incompatible
	}{
		{"CREATE TABLE t (id int);", false},
		{"ALTER TABLE clients ADD COLUMN x text NOT NULL DEFAULT '';", false},
		{"ALTER TABLE clients ALTER COLUMN app_id DROP NOT NULL;", false},
		{"CREATE INDEX i ON t (id); -- DROP TABLE t in a comment", false},
		{"DROP INDEX grants_one_active;\nCREATE UNIQUE INDEX grants_one_active ON grants (user_id);", false},
		{"DROP INDEX grants_one_active;", true},
		{"DROP TABLE t;", true},
		{"ALTER TABLE t DROP COLUMN c;", true},
		{"alter table t drop c;", true},
		{"ALTER TABLE t RENAME COLUMN a TO b;", true},
		{"ALTER TABLE t ALTER COLUMN a TYPE bigint;", true},
		{"ALTER TABLE t ALTER a SET DATA TYPE bigint;", true},
		{"ALTER TABLE t ALTER COLUMN a SET NOT NULL;", true},
		{"TRUNCATE t;", true},
	} {
		if got := len(newestIncompatibilities(upSection("-- +goose Up\n"+tc.up+"\n-- +goose Down\nDROP TABLE t;\n"))) > 0; got != tc.want {
			t.Errorf("%q: incompatible = %v, want %v", tc.up, got, tc.want)
		}
	}

	// The schema comparison, on a real database: a breaking change applied to a copy of
	// the current schema is found.
	s := storetest.NewDB(t)
	before := schemaOf(t, s.DB())
	for stmt, want := range map[string]string{
		`ALTER TABLE usage_events ADD COLUMN region text NOT NULL`:     "adds usage_events.region NOT NULL without a default to an existing table",
		`ALTER TABLE usage_events ALTER COLUMN status TYPE bigint`:     "changes the type of usage_events.status from int4 to int8",
		`ALTER TABLE usage_events ALTER COLUMN client_id DROP DEFAULT`: "removes the default of usage_events.client_id, which is NOT NULL",
		`ALTER TABLE usage_events DROP COLUMN credits`:                 "removes column usage_events.credits",
		`ALTER TABLE usage_events ALTER COLUMN user_id SET NOT NULL`:   "makes usage_events.user_id NOT NULL",
		`ALTER TABLE usage_events ADD COLUMN note text`:                "",
		`DROP TABLE gateway_scope_rules`:                               "removes table gateway_scope_rules",
	} {
		tx, err := s.DB().Beginx()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(stmt); err != nil {
			tx.Rollback()
			t.Fatalf("%s: %v", stmt, err)
		}
		after := schemaOf(t, tx)
		tx.Rollback()
		got := schemaIncompatibilities(before, after)
		if want == "" && len(got) != 0 || want != "" && !slices.Contains(got, want) {
			t.Errorf("%s: found %q, want %q", stmt, got, want)
		}
	}
}
