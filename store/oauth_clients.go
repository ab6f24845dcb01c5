package store

import (
	"context"
	"time"
)

const qUserEmailByID = `SELECT email FROM users WHERE id = $1`

// OAuthApp is an app with what the consent page and the token endpoint need: its
// owner's email and its scopes.
type OAuthApp struct {
	App        App
	OwnerEmail string
	Scopes     []Scope
	Source     IdentitySource // how its users sign in (the email code when none was chosen)
}

// OAuthAppByID loads an app with its owner's email and scopes; ErrNotFound if unknown.
func (s *Store) OAuthAppByID(ctx context.Context, id string) (OAuthApp, error) {
	if !ValidUUID(id) {
		return OAuthApp{}, ErrNotFound
	}
	a, err := s.AppByID(ctx, id)
	if err != nil {
		return OAuthApp{}, err
	}
	return s.oauthApp(ctx, a)
}

// OAuthAppBySlug is OAuthAppByID by slug (the resource URL names the slug).
func (s *Store) OAuthAppBySlug(ctx context.Context, slug string) (OAuthApp, error) {
	a, err := s.AppBySlug(ctx, slug)
	if err != nil {
		return OAuthApp{}, err
	}
	return s.oauthApp(ctx, a)
}

func (s *Store) oauthApp(ctx context.Context, a App) (OAuthApp, error) {
	oa := OAuthApp{App: a}
	if err := s.getContext(ctx, &oa.OwnerEmail, qUserEmailByID, a.OwnerID); err != nil {
		return OAuthApp{}, wrap("oauth app owner", err)
	}
	var err error
	if oa.Scopes, err = s.ScopesByApp(ctx, a.ID); err != nil {
		return OAuthApp{}, err
	}
	if oa.Source, err = s.IdentitySourceByApp(ctx, a.ID); err != nil {
		return OAuthApp{}, err
	}
	return oa, nil
}

// OAuthClient is everything the OAuth endpoints need to know about a client: the client,
// its app, the app's owner, the app's scopes and the client's working secret hashes.
// App, OwnerEmail and Scopes are zero for a client without an app (Client.HasApp).
// The OAuth server caches it per client ID.
type OAuthClient struct {
	Client     Client
	App        App
	OwnerEmail string
	Scopes     []Scope
	Source     IdentitySource // how the app's users sign in
	Secrets    []ClientSecret // current and in-overlap secrets at load time
}

// OAuthClientByID loads a client with its app, owner, scopes and active secrets.
// An unknown client is ErrNotFound.
func (s *Store) OAuthClientByID(ctx context.Context, id string, now time.Time) (OAuthClient, error) {
	var oc OAuthClient
	var err error
	if oc.Client, err = s.ClientByID(ctx, id); err != nil {
		return OAuthClient{}, err
	}
	if oc.Client.HasApp() {
		var oa OAuthApp
		if oa, err = s.OAuthAppByID(ctx, oc.Client.AppID); err != nil {
			return OAuthClient{}, err
		}
		oc.App, oc.OwnerEmail, oc.Scopes, oc.Source = oa.App, oa.OwnerEmail, oa.Scopes, oa.Source
	}
	if oc.Secrets, err = s.ActiveSecrets(ctx, id, now); err != nil {
		return OAuthClient{}, err
	}
	return oc, nil
}
