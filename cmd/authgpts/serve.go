package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/authserver"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
	"github.com/authgpts/authgpts/store/signingkeys"
	"github.com/authgpts/authgpts/views/email/mailer"
)

// serve opens the database, migrates it, builds the handlers and serves until ctx ends,
// then shuts down gracefully.
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	st, err := openAndMigrate(ctx, cfg, io.Discard)
	if err != nil {
		return err
	}
	defer st.Close()

	// One LISTEN connection per instance carries key rotations, client changes and
	// revocations from the other instances.
	listener := notify.NewListener(ctx, cfg.DatabaseURL, log)
	keys, err := signingkeys.NewKeys(ctx, st, cfg.Secret, time.Now, log)
	if err != nil {
		return err
	}
	if err := keys.Watch(ctx, listener); err != nil {
		return err
	}
	go authserver.RunJanitor(ctx, st, 10*time.Minute, log)

	deps := handlers.Deps{
		Store:          st,
		Log:            log,
		Now:            time.Now,
		BaseURL:        cfg.BaseURL,
		Secret:         cfg.Secret,
		AdminEmails:    cfg.AdminEmails,
		TrustedProxies: cfg.TrustedProxies,
		LoginOIDC:      cfg.LoginOIDC,
		LoginGitHub:    cfg.LoginGitHub,
		DevMode:        cfg.DevMode,
		Keys:           keys,
		Listener:       listener,
	}
	if cfg.SMTP != nil {
		if deps.Mail, err = mailer.NewSMTP(cfg.SMTP, cfg.MailFrom); err != nil {
			return err
		}
	} else {
		// LoadConfig guarantees SMTP is set outside development mode.
		deps.DevMailbox = mailer.NewDevMailbox(log, time.Now)
		deps.Mail = deps.DevMailbox
	}

	// The gateway runs background workers (revocation LISTEN, usage flusher, roll-ups).
	// It needs the OAuth server's signing keys; without them there are no gateway routes.
	var gw *gateway.Gateway
	if keys := gatewayKeys(deps); keys != nil {
		gw = gateway.New(gateway.Config{Store: st, Keys: keys, BaseURL: cfg.BaseURL, Notifications: listener, Log: log, Now: time.Now})
		gw.Start()
		deps.Gateway = gw
	}

	srv := &http.Server{
		Addr:              cfg.Addr,
		Handler:           handlers.NewRouter(deps),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		// No WriteTimeout: the gateway streams (SSE) responses of any length.
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("serving", "addr", cfg.Addr, "base_url", cfg.BaseURL.String(), "dev_mode", cfg.DevMode)

	select {
	case err := <-errc:
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	shutdownErr := srv.Shutdown(shutdownCtx)
	// Every call has been answered now: write the usage it recorded before the deferred
	// st.Close closes the database.
	if gw != nil {
		if err := gw.Close(shutdownCtx); err != nil {
			log.Error("gateway: final usage flush failed", "err", err)
		}
	}
	if shutdownErr != nil && !errors.Is(shutdownErr, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", shutdownErr)
	}
	return nil
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

// gatewayKeys is the key source of the gateway: the OAuth server's key manager.
func gatewayKeys(d handlers.Deps) gateway.KeySource {
	if d.Keys == nil {
		return nil // a nil *signingkeys.Keys must not become a non-nil interface
	}
	return d.Keys
}
