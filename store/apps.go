package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

const (
	appColumns = `a.id, a.owner_id, a.slug, a.name, a.upstream_url, a.access_token_ttl_seconds,
		a.refresh_token_ttl_seconds, a.metering_enabled, a.credits_per_call, a.free_credits,
		a.rate_limit_per_minute, a.mcp_enabled, a.suspended_at, a.suspended_reason, a.created_at, a.updated_at`

	qInsertApp = `
		INSERT INTO apps (owner_id, slug, name, upstream_url, mcp_enabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		RETURNING id, owner_id, slug, name, upstream_url, access_token_ttl_seconds,
		          refresh_token_ttl_seconds, metering_enabled, credits_per_call, free_credits,
		          rate_limit_per_minute, mcp_enabled, suspended_at, suspended_reason, created_at, updated_at`
	qTakenSlugs        = `SELECT slug FROM apps WHERE slug = $1 OR slug LIKE $1 || '-%'`
	qAppBySlug         = `SELECT ` + appColumns + ` FROM apps a WHERE a.slug = $1`
	qAppByID           = `SELECT ` + appColumns + ` FROM apps a WHERE a.id = $1`
	qAppBySlugForOwner = `SELECT ` + appColumns + ` FROM apps a WHERE a.slug = $1 AND a.owner_id = $2`
	qAppsByOwner       = `
		SELECT ` + appColumns + `, (SELECT count(*) FROM clients c WHERE c.app_id = a.id) AS client_count
		  FROM apps a WHERE a.owner_id = $1 ORDER BY a.created_at DESC, a.id`
	qInsertScope = `
		INSERT INTO app_scopes (app_id, name, description, builtin, is_default) VALUES ($1, $2, $3, $4, $5)`
	qScopesByApp = `
		SELECT app_id, name, description, builtin, is_default FROM app_scopes
		 WHERE app_id = $1
		 ORDER BY builtin DESC, array_position(ARRAY['openid', 'email', 'profile'], name), created_at, name`

	// Developer edits: every statement names the owner, so another developer's app is
	// simply not found (and the portal answers 404).
	qUpdateAppSettings = `
		UPDATE apps a
		   SET name = $3, slug = $4, upstream_url = $5, access_token_ttl_seconds = $6,
		       refresh_token_ttl_seconds = $7, metering_enabled = $8, credits_per_call = $9,
		       free_credits = $10, rate_limit_per_minute = $11, mcp_enabled = $12, updated_at = $13
		 WHERE a.id = $1 AND a.owner_id = $2
		RETURNING ` + appColumns
	qNotifyAppClients = `SELECT pg_notify($2, c.id) FROM clients c JOIN apps a ON a.id = c.app_id WHERE a.id = $1`
	qDeleteApp        = `DELETE FROM apps a WHERE a.id = $1 AND a.owner_id = $2`
	qInsertOwnerScope = `
		INSERT INTO app_scopes (app_id, name, description, builtin, is_default, created_at)
		SELECT a.id, $3, $4, false, $5, $6 FROM apps a WHERE a.id = $1 AND a.owner_id = $2`
	// Built-in scopes keep their standard descriptions; only is_default changes for them.
	qUpdateOwnerScope = `
		UPDATE app_scopes s
		   SET description = CASE WHEN s.builtin THEN s.description ELSE $4 END, is_default = $5
		  FROM apps a
		 WHERE a.id = s.app_id AND a.id = $1 AND a.owner_id = $2 AND s.name = $3`
	qDeleteOwnerScope = `
		DELETE FROM app_scopes s USING apps a
		 WHERE a.id = s.app_id AND a.id = $1 AND a.owner_id = $2 AND s.name = $3 AND NOT s.builtin`
	qListApps = `
		SELECT ` + appColumns + `, u.email AS owner_email,
		       (SELECT count(*) FROM clients c WHERE c.app_id = a.id) AS client_count
		  FROM apps a JOIN users u ON u.id = a.owner_id
		 WHERE $1 = '' OR u.email = $1
		 ORDER BY a.created_at, a.id`
	qNotify = `SELECT pg_notify($1, $2)`
)

// ErrBuiltinScope is returned when a built-in scope would be deleted.
var ErrBuiltinScope = errors.New("store: built-in scopes cannot be deleted")

// App is a developer's protected API.
type App struct {
	ID                     string     `db:"id"`
	OwnerID                string     `db:"owner_id"`
	Slug                   string     `db:"slug"`
	Name                   string     `db:"name"`
	UpstreamURL            string     `db:"upstream_url"`
	AccessTokenTTLSeconds  int        `db:"access_token_ttl_seconds"`
	RefreshTokenTTLSeconds int        `db:"refresh_token_ttl_seconds"`
	MeteringEnabled        bool       `db:"metering_enabled"`
	CreditsPerCall         int64      `db:"credits_per_call"`
	FreeCredits            int64      `db:"free_credits"`
	RateLimitPerMinute     int        `db:"rate_limit_per_minute"`
	MCPEnabled             bool       `db:"mcp_enabled"`
	SuspendedAt            *time.Time `db:"suspended_at"`
	SuspendedReason        string     `db:"suspended_reason"`
	CreatedAt              time.Time  `db:"created_at"`
	UpdatedAt              time.Time  `db:"updated_at"`
}

// AccessTokenTTL is the lifetime of the app's access tokens.
func (a App) AccessTokenTTL() time.Duration {
	return time.Duration(a.AccessTokenTTLSeconds) * time.Second
}

// RefreshTokenTTL is the lifetime of the app's refresh tokens.
func (a App) RefreshTokenTTL() time.Duration {
	return time.Duration(a.RefreshTokenTTLSeconds) * time.Second
}

// ResourcePath is the app's gateway path; base URL + ResourcePath is the aud of its tokens.
func (a App) ResourcePath() string { return "/gw/" + a.Slug }

// IsSuspended reports whether an admin suspended the app.
func (a App) IsSuspended() bool { return a.SuspendedAt != nil }

// AppSettings is everything a developer edits on the app settings page.
type AppSettings struct {
	Name                   string
	Slug                   string
	UpstreamURL            string
	AccessTokenTTLSeconds  int
	RefreshTokenTTLSeconds int
	MeteringEnabled        bool
	CreditsPerCall         int64
	FreeCredits            int64
	RateLimitPerMinute     int
	MCPEnabled             bool
}

// Settings returns the app's editable settings.
func (a App) Settings() AppSettings {
	return AppSettings{
		Name: a.Name, Slug: a.Slug, UpstreamURL: a.UpstreamURL,
		AccessTokenTTLSeconds: a.AccessTokenTTLSeconds, RefreshTokenTTLSeconds: a.RefreshTokenTTLSeconds,
		MeteringEnabled: a.MeteringEnabled, CreditsPerCall: a.CreditsPerCall, FreeCredits: a.FreeCredits,
		RateLimitPerMinute: a.RateLimitPerMinute, MCPEnabled: a.MCPEnabled,
	}
}

// AppListing is an app with its owner's email and client count, for the operator CLI.
type AppListing struct {
	AppSummary
	OwnerEmail string `db:"owner_email"`
}

// AppSummary is an app with its client count, for lists.
type AppSummary struct {
	App
	ClientCount int `db:"client_count"`
}

// Scope is one scope an app offers.
type Scope struct {
	AppID       string `db:"app_id"`
	Name        string `db:"name"`
	Description string `db:"description"`
	Builtin     bool   `db:"builtin"`
	IsDefault   bool   `db:"is_default"`
}

// BuiltinScopes are created with every app and cannot be deleted.
var BuiltinScopes = []Scope{
	{Name: "openid", Description: "Confirm who you are", Builtin: true, IsDefault: true},
	{Name: "email", Description: "See your email address", Builtin: true, IsDefault: true},
	{Name: "profile", Description: "See your basic profile", Builtin: true, IsDefault: true},
}

// NewApp is what creating an app takes: the app, and its first client with credentials
// the caller generated (the store never sees a clear secret).
type NewApp struct {
	OwnerID     string
	Name        string
	Slug        string // empty: derived from Name, made unique
	UpstreamURL string
	MCPEnabled  bool
	ExtraScopes []Scope
	Client      NewClient
}

var slugInvalid = regexp.MustCompile(`[^a-z0-9]+`)

// SlugFromName derives a URL slug: lower-case letters, digits and single hyphens, at
// most 40 characters, never empty.
func SlugFromName(name string) string {
	s := strings.Trim(slugInvalid.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(s) > 40 {
		s = strings.Trim(s[:40], "-")
	}
	if s == "" {
		s = "app"
	}
	return s
}

var slugPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// ValidSlug reports whether s is an acceptable slug (the schema's rule).
func ValidSlug(s string) bool {
	return len(s) <= 40 && slugPattern.MatchString(s)
}

// CreateApp creates the app, its built-in and extra scopes and its first client in one
// transaction. An explicit slug that is taken is ErrConflict; a derived one gets a suffix.
func (s *Store) CreateApp(ctx context.Context, n NewApp, now time.Time) (App, Client, error) {
	var app App
	var client Client
	err := s.InTx(ctx, func(tx *Tx) error {
		slug := n.Slug
		if slug == "" {
			var err error
			if slug, err = tx.freeSlug(ctx, SlugFromName(n.Name)); err != nil {
				return err
			}
		}
		if err := tx.getContext(ctx, &app, qInsertApp, n.OwnerID, slug, n.Name, n.UpstreamURL, n.MCPEnabled, now); err != nil {
			return err
		}
		for _, sc := range append(append([]Scope(nil), BuiltinScopes...), n.ExtraScopes...) {
			if _, err := tx.q.ExecContext(ctx, qInsertScope, app.ID, sc.Name, sc.Description, sc.Builtin, sc.IsDefault); err != nil {
				return err
			}
		}
		c := n.Client
		c.AppID = app.ID
		var err error
		client, err = tx.CreateClient(ctx, c, now)
		return err
	})
	return app, client, wrap("create app", err)
}

func (s *Store) freeSlug(ctx context.Context, base string) (string, error) {
	var taken []string
	if err := s.selectContext(ctx, &taken, qTakenSlugs, base); err != nil {
		return "", err
	}
	used := make(map[string]bool, len(taken))
	for _, t := range taken {
		used[t] = true
	}
	if !used[base] {
		return base, nil
	}
	for i := 2; ; i++ {
		suffix := fmt.Sprintf("-%d", i)
		cand := base
		if len(cand)+len(suffix) > 40 {
			cand = strings.Trim(cand[:40-len(suffix)], "-")
		}
		if cand += suffix; !used[cand] {
			return cand, nil
		}
	}
}

// AppBySlug returns an app for the OAuth server and gateway (not owner-scoped).
// A string that cannot be a slug (a URL's %ff or %00, say) names nothing.
func (s *Store) AppBySlug(ctx context.Context, slug string) (App, error) {
	if !ValidSlug(slug) {
		return App{}, ErrNotFound
	}
	var a App
	err := s.getContext(ctx, &a, qAppBySlug, slug)
	return a, wrap("app by slug", err)
}

// AppByID returns an app (not owner-scoped).
func (s *Store) AppByID(ctx context.Context, id string) (App, error) {
	var a App
	err := s.getContext(ctx, &a, qAppByID, id)
	return a, wrap("app by id", err)
}

// AppBySlugForOwner returns the owner's app; another developer's app is ErrNotFound.
func (s *Store) AppBySlugForOwner(ctx context.Context, ownerID, slug string) (App, error) {
	var a App
	err := s.getContext(ctx, &a, qAppBySlugForOwner, slug, ownerID)
	return a, wrap("app by slug for owner", err)
}

// AppsByOwner lists the owner's apps, newest first.
func (s *Store) AppsByOwner(ctx context.Context, ownerID string) ([]AppSummary, error) {
	var out []AppSummary
	err := s.selectContext(ctx, &out, qAppsByOwner, ownerID)
	return out, wrap("apps by owner", err)
}

// ScopesByApp lists an app's scopes, built-ins first.
func (s *Store) ScopesByApp(ctx context.Context, appID string) ([]Scope, error) {
	var out []Scope
	err := s.selectContext(ctx, &out, qScopesByApp, appID)
	return out, wrap("scopes by app", err)
}

// UpdateAppSettings saves the owner's app settings and announces the change. A slug
// another app has is ErrConflict; another developer's app is ErrNotFound.
func (s *Store) UpdateAppSettings(ctx context.Context, ownerID, appID string, u AppSettings, now time.Time) (App, error) {
	var a App
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.getContext(ctx, &a, qUpdateAppSettings, appID, ownerID, u.Name, u.Slug, u.UpstreamURL,
			u.AccessTokenTTLSeconds, u.RefreshTokenTTLSeconds, u.MeteringEnabled, u.CreditsPerCall,
			u.FreeCredits, u.RateLimitPerMinute, u.MCPEnabled, now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, a.ID)
	})
	return a, wrap("update app settings", err)
}

// DeleteApp deletes the owner's app with its scopes, clients, secrets and grants (the
// schema cascades), announcing the app and each of its clients as changed.
func (s *Store) DeleteApp(ctx context.Context, ownerID, appID string) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.q.ExecContext(ctx, qNotifyAppClients, appID, ChannelClientChanged); err != nil {
			return err
		}
		if err := tx.lockWebhookDeliveries(ctx, qLockDeliveriesOfApp, appID); err != nil {
			return err
		}
		if err := tx.execOne(ctx, "delete app", qDeleteApp, appID, ownerID); err != nil {
			return err
		}
		// Its grants went with it: token caches drop the app's tokens as on suspension.
		if err := tx.notifyChange(ctx, RevocationsChannel, TargetApp+":"+appID); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	return wrap("delete app", err)
}

// CreateScope adds a custom scope to the owner's app. A name the app already has is
// ErrConflict.
func (s *Store) CreateScope(ctx context.Context, ownerID, appID string, sc Scope, now time.Time) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "create scope", qInsertOwnerScope, appID, ownerID, sc.Name, sc.Description, sc.IsDefault, now); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	return wrap("create scope", err)
}

// UpdateScope changes a scope's description (custom scopes only) and whether it is
// granted when a client asks for no scope.
func (s *Store) UpdateScope(ctx context.Context, ownerID, appID, name, description string, isDefault bool) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		if err := tx.execOne(ctx, "update scope", qUpdateOwnerScope, appID, ownerID, name, description, isDefault); err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	return wrap("update scope", err)
}

// DeleteScope removes a custom scope of the owner's app. Built-in scopes are
// ErrBuiltinScope, unknown ones ErrNotFound.
func (s *Store) DeleteScope(ctx context.Context, ownerID, appID, name string) error {
	err := s.InTx(ctx, func(tx *Tx) error {
		err := tx.execOne(ctx, "delete scope", qDeleteOwnerScope, appID, ownerID, name)
		if errors.Is(err, ErrNotFound) {
			scopes, lerr := tx.ScopesByApp(ctx, appID)
			if lerr != nil {
				return lerr
			}
			for _, sc := range scopes {
				if sc.Name == name && sc.Builtin {
					return ErrBuiltinScope
				}
			}
		}
		if err != nil {
			return err
		}
		return tx.notifyChange(ctx, ChannelAppChanged, appID)
	})
	if errors.Is(err, ErrBuiltinScope) {
		return ErrBuiltinScope
	}
	return wrap("delete scope", err)
}

// ListApps lists every app, or only those of ownerEmail when it is not empty, oldest
// first (the operator CLI).
func (s *Store) ListApps(ctx context.Context, ownerEmail string) ([]AppListing, error) {
	out := []AppListing{}
	err := s.selectContext(ctx, &out, qListApps, ownerEmail)
	return out, wrap("list apps", err)
}

// notifyChange queues a NOTIFY that PostgreSQL delivers when the transaction commits
// (and drops when it rolls back), so listeners never see a change that did not happen.
func (s *Store) notifyChange(ctx context.Context, channel, id string) error {
	_, err := s.q.ExecContext(ctx, qNotify, channel, id)
	return err
}
