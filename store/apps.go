package store

import (
	"context"
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
)

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

// ValidSlug reports whether s is an acceptable slug (the schema's rule).
func ValidSlug(s string) bool {
	return len(s) <= 40 && regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`).MatchString(s)
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
func (s *Store) AppBySlug(ctx context.Context, slug string) (App, error) {
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
