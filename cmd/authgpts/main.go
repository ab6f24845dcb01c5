// Command authgpts is the AuthGPTs server and its operator CLI.
//
//	authgpts [serve]            run the server (migrates first)
//	authgpts migrate            apply database migrations and exit
//	authgpts user admin EMAIL   make EMAIL an admin (creating the account if needed)
//	authgpts app create …       create an app and its first client, print JSON (cli_app.go)
//	authgpts app list           list apps as JSON
//	authgpts keys rotate [--alg RS256|ES256]   rotate the token signing keys
//	authgpts connections rotate-key             re-seal connection secrets under a new key
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authgpts:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(os.Stderr, usage)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  authgpts [serve]            run the server on AUTHGPTS_ADDR (migrates first)
  authgpts migrate            apply database migrations and exit
  authgpts user admin EMAIL   make EMAIL an admin
  authgpts app create --owner EMAIL --name NAME [--redirect-uri URI]... [--scope S]...
                      [--upstream URL] [--kind gpt|public|service] [--mcp]
                              create an app and its first client; prints JSON
  authgpts app list [--owner EMAIL]
                              list apps as JSON
  authgpts keys rotate [--alg RS256|ES256]
                              rotate the signing keys (default: both; ES256 signs
                              access tokens, RS256 ID tokens)
  authgpts connections rotate-key
                              re-encrypt every connection secret and token under a
                              new vault key; prints JSON`

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	// Help needs no configuration and touches nothing: not the database, not .data/.
	if wantsHelp(cmd, args) {
		fmt.Fprintln(stdout, usage)
		return nil
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	if cfg.DevMode && len(cfg.Secret) == 0 {
		if cfg.Secret, err = devSecret(".data"); err != nil {
			return err
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, logger)
	case "migrate":
		return migrate(ctx, cfg, stdout)
	case "user":
		return userCommand(ctx, cfg, args, stdout)
	case "app":
		return appCommand(ctx, cfg, args, stdout)
	case "keys":
		return keysCommand(ctx, cfg, args, stdout)
	case "connections":
		return connectionsCommand(ctx, cfg, args, stdout)
	default:
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
	}
}

// wantsHelp reports whether the command line asks for the usage: `authgpts help`, or -h,
// -help or --help anywhere on it.
func wantsHelp(cmd string, args []string) bool {
	for _, a := range append([]string{cmd}, args...) {
		switch a {
		case "help", "-h", "-help", "--help":
			return true
		}
	}
	return false
}
