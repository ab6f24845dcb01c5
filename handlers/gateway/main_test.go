package gateway_test

import (
	"os"
	"testing"
)

func envDatabaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("DATABASE_URL")
	if u == "" {
		t.Fatal("DATABASE_URL is not set; run the tests with `make test`")
	}
	return u
}
