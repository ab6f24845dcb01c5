package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/authgpts/authgpts/handlers/authserver"
	"github.com/authgpts/authgpts/handlers/connections"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/safefetch"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
	"github.com/authgpts/authgpts/store/ratelimit"
	"github.com/authgpts/authgpts/store/signingkeys"
	"github.com/authgpts/authgpts/store/webhook"
	"github.com/authgpts/authgpts/views/email/mailer"
)

// Config is what one instance is built from: cmd/authgpts fills it from the environment
// (DESIGN.md's variables), tests and the benchmark from their own fixtures. The fields
// after Log are the only ones a test overrides; production leaves them zero.
type Config struct {
	DatabaseURL    string
	BaseURL        *url.URL // AUTHGPTS_BASE_URL: the issuer, byte for byte
	Addr           string   // AUTHGPTS_ADDR, for ListenAndServe
	Secret         []byte   // AUTHGPTS_SECRET: every key is derived from it, once
	SMTP           *url.URL // nil: the development mailbox (LoadConfig requires SMTP in production)
	MailFrom       string
	AdminEmails    []string
	TrustedProxies []string // AUTHGPTS_TRUSTED_PROXIES
	DevMode        bool
	Migrate        bool // apply the migrations before serving (serve does; test databases are migrated already)
	Log            *slog.Logger

	// Now is the clock of every cache, limiter and expiry (nil: time.Now).
	Now func() time.Time
	// Mail replaces the SMTP sender or the development mailbox.
	Mail mailer.Mailer
	// Fetcher fetches client ID metadata documents and client JWKS (nil: the production
	// SSRF policy); tests pass one whose allow-list names their local HTTPS server.
	Fetcher *safefetch.Fetcher
	// OTPLimits replaces the email-code limits (zero: emailcode.DefaultLimits).
	OTPLimits store.OTPSendLimits
	// Gateway adjusts the gateway's tunables before it is built (roll-up period, batch sizes).
	Gateway func(*gateway.Config)
	// SigningKeys replaces the instance's own key manager, for a test of an instance that
	// never hears key-rotation NOTIFYs (nil: a manager that watches them).
	SigningKeys *signingkeys.Keys
	// ConnectionsHTTP calls third-party providers (nil: a client with a 10 s timeout).
	ConnectionsHTTP *http.Client
	// WebhookPolicy is where webhook endpoints may point (DevMode is added from DevMode);
	// tests allow-list their local HTTPS receiver in it.
	WebhookPolicy webhook.Policy
	// WebhookSchedule replaces the retry schedule of webhook deliveries (nil: the default).
	WebhookSchedule []time.Duration
	// LoginOIDC and LoginGitHub are the portal's upstream sign-in providers
	// (AUTHGPTS_LOGIN_*; nil: not offered).
	LoginOIDC, LoginGitHub *signin.PortalProvider
	// GitHubWebURL and GitHubAPIURL replace github.com and api.github.com (tests point
	// them at a local server with GitHub's OAuth and user API).
	GitHubWebURL, GitHubAPIURL string
}

// janitorInterval is how often each instance sweeps expired codes, refresh tokens,
// unused registrations and idle rate-limit buckets.
const janitorInterval = 10 * time.Minute

// connectionsInterval is how often each instance sends queued revocations to
// third-party providers and sweeps abandoned connect requests.
const connectionsInterval = time.Minute

// leaseReturnInterval is how often rate-limit tokens leased and left unspent go back.
const leaseReturnInterval = 5 * time.Second

// Server is one AuthGPTs instance: the store, the LISTEN connection, the signing keys,
// the gateway with its workers, the janitor and the router, built by NewServer and
// stopped in order by Shutdown.
type Server struct {
	Store      *store.Store
	Listener   *notify.Listener
	Keys       *signingkeys.Keys
	Gateway    *gateway.Gateway
	Webhooks   *webhook.Worker    // webhook delivery
	DevMailbox *mailer.DevMailbox // set when mail goes to /dev/mail
	// Registrations is the per-IP limit of dynamic client registrations, shared with
	// every instance through PostgreSQL.
	Registrations *ratelimit.Limiter
	Derived       oauth.DerivedKeys // the keys derived from AUTHGPTS_SECRET
	Handler       http.Handler      // the router
	// Connections is the vault of end users' third-party accounts.
	Connections *connections.Service

	cfg     Config
	log     *slog.Logger
	http    *http.Server
	bg      context.Context // lives until Shutdown: the listener and the janitor
	cancel  context.CancelFunc
	workers sync.WaitGroup
	started bool
}

// NewServer opens the database (migrating it when cfg.Migrate), the instance's LISTEN
// connection and key manager, and builds the gateway and the router. Nothing runs in the
// background until Start; Shutdown releases everything NewServer opened.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Every value a request chooses may end up in a log line: bound them all.
	cfg.Log = web.CapLog(cfg.Log)
	if len(cfg.Secret) == 0 {
		return nil, errors.New("server: AUTHGPTS_SECRET is empty")
	}
	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		if _, err := store.Migrate(ctx, st.DB().DB); err != nil {
			st.Close()
			return nil, err
		}
	}
	// The listener and the janitor live until Shutdown, not until ctx (which may be a
	// start-up deadline).
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{Store: st, Derived: oauth.DeriveKeys(cfg.Secret), cfg: cfg, log: cfg.Log, bg: bg, cancel: cancel}
	fail := func(err error) (*Server, error) {
		cancel()
		<-s.Listener.Done()
		st.Close()
		return nil, err
	}

	// One LISTEN connection per instance carries key rotations, client and app changes
	// and revocations from the other instances.
	s.Listener = notify.NewListener(bg, cfg.DatabaseURL, cfg.Log)
	s.Keys = cfg.SigningKeys
	if s.Keys == nil {
		if s.Keys, err = signingkeys.NewKeys(ctx, st, s.Derived.KeyEncryption, cfg.Now, cfg.Log); err != nil {
			return fail(err)
		}
		if err := s.Keys.Watch(bg, s.Listener); err != nil {
			return fail(err)
		}
	}

	mail := cfg.Mail
	switch {
	case mail != nil:
	case cfg.SMTP != nil:
		if mail, err = mailer.NewSMTP(cfg.SMTP, cfg.MailFrom); err != nil {
			return fail(err)
		}
	default:
		s.DevMailbox = mailer.NewDevMailbox(cfg.Log, cfg.Now)
		mail = s.DevMailbox
	}

	s.Connections = connections.New(connections.Config{Store: st, Vault: s.Derived.Vault, Hasher: s.Derived.TokenHash,
		BaseURL: cfg.BaseURL.String(), HTTP: cfg.ConnectionsHTTP, Now: cfg.Now, Log: cfg.Log})
	if err := s.Connections.Watch(s.Listener); err != nil {
		return fail(err)
	}
	gwCfg := gateway.Config{Store: st, Keys: s.Keys, KeyHash: s.Derived.TokenHash, BaseURL: cfg.BaseURL, Notifications: s.Listener, Log: cfg.Log, Now: cfg.Now,
		Connections: s.Connections}
	if cfg.Gateway != nil {
		cfg.Gateway(&gwCfg)
	}
	s.Gateway = gateway.New(gwCfg)
	s.Registrations = ratelimit.New(st, "register:", time.Minute)

	// Webhook delivery: every instance claims due deliveries (FOR UPDATE SKIP LOCKED),
	// woken by NOTIFY authgpts_webhooks when a change commits.
	policy := cfg.WebhookPolicy
	policy.DevMode = policy.DevMode || cfg.DevMode
	s.Webhooks = webhook.New(webhook.Config{Store: st, Key: s.Derived.WebhookSecrets, Notifications: s.Listener,
		Policy: policy, Now: cfg.Now, Log: cfg.Log, Schedule: cfg.WebhookSchedule})

	s.Handler = newRouter(deps{
		Store:          st,
		Mail:           mail,
		DevMailbox:     s.DevMailbox,
		Log:            cfg.Log,
		Now:            cfg.Now,
		BaseURL:        cfg.BaseURL,
		Derived:        s.Derived,
		AdminEmails:    cfg.AdminEmails,
		OTPLimits:      cfg.OTPLimits,
		TrustedProxies: cfg.TrustedProxies,
		DevMode:        cfg.DevMode,
		Keys:           s.Keys,
		Listener:       s.Listener,
		Gateway:        s.Gateway,
		Fetcher:        cfg.Fetcher,
		Registrations:  s.Registrations,
		Connections:    s.Connections,
		WebhookPolicy:  policy,
		GitHubWebURL:   cfg.GitHubWebURL,
		GitHubAPIURL:   cfg.GitHubAPIURL,
		LoginOIDC:      cfg.LoginOIDC,
		LoginGitHub:    cfg.LoginGitHub,
	})
	s.http = &http.Server{
		Addr:              cfg.Addr,
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		// Tokens, cookies and AI clients' headers fit in a few KiB; Go's default of 1 MiB
		// per request lets any caller make the server hold a megabyte per connection.
		MaxHeaderBytes: MaxHeaderBytes,
		// No WriteTimeout: the gateway streams (SSE) responses of any length.
	}
	return s, nil
}

// MaxHeaderBytes bounds a request's header block; a larger one is answered 431.
const MaxHeaderBytes = 64 << 10

// Start runs the background workers: the gateway's (usage flusher, roll-ups, cache
// sweeps, lease refills), the janitor and the return of idle registration-limit leases.
// Each is safe on every instance at once.
func (s *Server) Start() {
	if s.started {
		return
	}
	s.started = true
	s.Gateway.Start()
	if err := s.Webhooks.Start(); err != nil {
		// Without the LISTEN it still polls every second.
		s.log.Error("webhooks: LISTEN failed; polling only", "err", err)
	}
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		authserver.RunJanitor(s.bg, s.Store, janitorInterval, s.cfg.Now, s.log)
	}()
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		s.Connections.Run(s.bg, connectionsInterval)
	}()
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		t := time.NewTicker(leaseReturnInterval)
		defer t.Stop()
		for {
			select {
			case <-s.bg.Done():
				return
			case <-t.C:
			}
			if err := s.Registrations.Release(s.bg, s.cfg.Now(), false); err != nil && s.bg.Err() == nil {
				s.log.Error("return leased registration-limit tokens", "err", err)
			}
		}
	}()
}

// ListenAndServe serves on cfg.Addr until Shutdown.
func (s *Server) ListenAndServe() error {
	s.log.Info("serving", "addr", s.cfg.Addr, "base_url", s.cfg.BaseURL.String(), "dev_mode", s.cfg.DevMode)
	return s.serveErr(s.http.ListenAndServe())
}

// Serve serves on l until Shutdown.
func (s *Server) Serve(l net.Listener) error { return s.serveErr(s.http.Serve(l)) }

func (s *Server) serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
}

// finalWriteTimeout bounds the writes of Shutdown after the drain (the last usage
// events, leased credits and rate-limit tokens going back), which get a deadline of
// their own: a drain that used up its time must not make them fail.
const finalWriteTimeout = 15 * time.Second

// Shutdown stops the instance in order: it stops accepting connections and waits for
// the requests in flight until drain ends, then cuts those still open (streams), writes
// the usage the calls recorded and returns what the instance leased, stops the workers
// and the LISTEN connection, and closes the database last.
func (s *Server) Shutdown(drain context.Context) error {
	var errs []error
	if err := s.http.Shutdown(drain); err != nil {
		errs = append(errs, fmt.Errorf("shutdown: %w", err))
		_ = s.http.Close() // requests (streams, most likely) outlived the drain: cut them
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(drain), finalWriteTimeout)
	defer cancel()
	if s.started {
		// Every call has been answered now: flush its usage before the database closes.
		if err := s.Gateway.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: final usage flush: %w", err))
		}
		// Webhook deliveries in flight finish; the claimed ones not sent go back.
		if err := s.Webhooks.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("webhooks: deliveries in flight: %w", err))
		}
		// A removed provider's tokens still being revoked there.
		if err := s.Connections.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("connections: revocations in flight: %w", err))
		}
	}
	s.cancel()
	s.workers.Wait()
	if err := s.Registrations.Release(ctx, s.cfg.Now(), true); err != nil {
		errs = append(errs, fmt.Errorf("return leased registration-limit tokens: %w", err))
	}
	<-s.Listener.Done()
	if err := s.Store.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Config returns the configuration the instance was built from, with its defaults.
func (s *Server) Config() Config { return s.cfg }
