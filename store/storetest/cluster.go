package storetest

import (
	"os"
	"testing"

	"github.com/authgpts/authgpts/store/pgcluster"
)

// NewCluster starts a PostgreSQL cluster of the test's own (initdb and pg_ctl, as
// cmd/devdb runs them), for tests that stop or restart the server under load. It is
// stopped and deleted with the test. Its databases come from NewDSNOn(t,
// c.DSN("postgres")).
func NewCluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "authgpts-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// As root the server runs as the postgres user, which must be able to enter dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := pgcluster.Open(dir)
	if err != nil {
		t.Fatalf("storetest: new cluster: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("storetest: start cluster: %v", err)
	}
	t.Cleanup(func() {
		if c.Running() {
			_ = c.Stop("immediate")
		}
	})
	return c
}
