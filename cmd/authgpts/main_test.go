package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestServe_MissingDatabaseFailsClearly(t *testing.T) {
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dsn := "postgres://postgres:db-password-123@" + addr + "/authgpts?sslmode=disable"

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"serve"}, env(map[string]string{
		"DATABASE_URL": dsn, "AUTHGPTS_SECRET": strings.Repeat("x", 40),
	}), &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the database") {
		t.Fatalf("run(serve) error = %v, want a clear database error", err)
	}
	if strings.Contains(err.Error(), "db-password-123") {
		t.Error("the error message contains the database password")
	}
}

func TestRun_UnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, env(map[string]string{"DATABASE_URL": "postgres://x/y", "AUTHGPTS_SECRET": strings.Repeat("x", 40)}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("run(frobnicate) = %v, want unknown command", err)
	}
}

// TestRun_HelpNeedsNoConfigurationAndWritesNothing: `authgpts help` and any command's
// --help print the usage with an empty environment and create no file (not .data/).
func TestRun_HelpNeedsNoConfigurationAndWritesNothing(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"serve", "--help"}, {"app", "create", "--help"}, {"keys", "rotate", "-h"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, env(nil), &out, &bytes.Buffer{}); err != nil {
			t.Errorf("run(%q) = %v, want the usage", args, err)
		}
		if !strings.Contains(out.String(), "usage:") {
			t.Errorf("run(%q) printed %q, want the usage", args, out.String())
		}
	}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("help wrote %d files or folders, e.g. %q; want none", len(entries), entries[0].Name())
	}
}
