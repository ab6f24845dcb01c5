package main

import (
	"bytes"
	"context"
	"net"
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
