package store

import (
	"context"
	"time"
)

// ClientsChannel is the PostgreSQL NOTIFY channel on which changes to clients, client
// secrets, apps and app scopes are announced (payload "client:<id>" or "app:<id>"),
// by triggers (migration 00004), so every instance drops its cached copy.
const ClientsChannel = "authgpts_clients"

const qUserEmailByID = `SELECT email FROM users WHERE id = $1`

// OAuthClient is everything the OAuth endpoints need to know about a client: the client,
// its app, the app's owner, the app's scopes and the client's working secret hashes.
// The OAuth server caches it per client ID.
type OAuthClient struct {
	Client     Client
	App        App
	OwnerEmail string
	Scopes     []Scope
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
	if oc.App, err = s.AppByID(ctx, oc.Client.AppID); err != nil {
		return OAuthClient{}, err
	}
	if err = s.getContext(ctx, &oc.OwnerEmail, qUserEmailByID, oc.App.OwnerID); err != nil {
		return OAuthClient{}, wrap("oauth client owner", err)
	}
	if oc.Scopes, err = s.ScopesByApp(ctx, oc.App.ID); err != nil {
		return OAuthClient{}, err
	}
	if oc.Secrets, err = s.ActiveSecrets(ctx, id, now); err != nil {
		return OAuthClient{}, err
	}
	return oc, nil
}
