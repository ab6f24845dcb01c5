package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/store"
)

// shutdownGrace is how long requests in flight may take to finish after SIGTERM.
const shutdownGrace = 20 * time.Second

// serve builds the instance (migrating the database first), runs it until ctx ends, then
// shuts it down gracefully.
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	srv, err := handlers.NewServer(ctx, serverConfig(cfg, log))
	if err != nil {
		return err
	}
	srv.Start()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()

	select {
	case err = <-errc:
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		log.Error("shutdown", "err", serr)
		if err == nil {
			err = serr
		}
	}
	return err
}

// serverConfig is the instance configuration of the environment's.
func serverConfig(cfg Config, log *slog.Logger) handlers.Config {
	return handlers.Config{
		DatabaseURL:    cfg.DatabaseURL,
		BaseURL:        cfg.BaseURL,
		Addr:           cfg.Addr,
		Secret:         cfg.Secret,
		SMTP:           cfg.SMTP,
		MailFrom:       cfg.MailFrom,
		AdminEmails:    cfg.AdminEmails,
		TrustedProxies: cfg.TrustedProxies,
		LoginOIDC:      cfg.LoginOIDC,
		LoginGitHub:    cfg.LoginGitHub,
		DevMode:        cfg.DevMode,
		Migrate:        true,
		Log:            log,
	}
}

func openAndMigrate(ctx context.Context, cfg Config, out io.Writer) (*store.Store, error) {
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	version, err := store.Migrate(ctx, st.DB().DB)
	if err != nil {
		st.Close()
		return nil, err
	}
	fmt.Fprintf(out, "database at migration version %d\n", version)
	return st, nil
}

func migrate(ctx context.Context, cfg Config, out io.Writer) error {
	st, err := openAndMigrate(ctx, cfg, out)
	if err != nil {
		return err
	}
	return st.Close()
}
