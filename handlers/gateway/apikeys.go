package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// HeaderAPIKey carries an API key, as an alternative to Authorization: Bearer agk_….
const HeaderAPIKey = "X-API-Key"

var canonAPIKey = http.CanonicalHeaderKey(HeaderAPIKey)

// keyCacheTTL bounds how long a verified key is reused without a database read; a
// revocation reaches every instance at once anyway (RevocationsChannel "apikey:<id>").
const keyCacheTTL = time.Hour

// descKeyRefused is the one description of every refused key, unknown, revoked,
// expired or for another app alike: the same 401 body as a malformed access token, so
// the answer tells nothing about the key.
const descKeyRefused = "The access token is malformed or uses a refused algorithm."

// apiKeyOf returns the API key of the request, if it sent one: X-API-Key, or a Bearer
// token with the agk_ prefix. sent reports that X-API-Key was present (even empty).
func apiKeyOf(r *http.Request, bearer string) (key string, sent bool) {
	if vs := r.Header[canonAPIKey]; len(vs) > 0 {
		return strings.TrimSpace(vs[0]), true
	}
	if strings.HasPrefix(bearer, oauth.PrefixAPIKey) {
		return bearer, true
	}
	return "", false
}

// verifyKey returns the verified caller of an API key for app, or nil when the key is
// refused. Every key not in the cache costs the same keyed hash and the same query,
// whether it is unknown, revoked or live, so timing does not tell them apart. err is set
// only when the database could not be asked.
func (g *Gateway) verifyKey(ctx context.Context, key string, app *gatewayApp, now time.Time) (*verified, error) {
	k := tokenKey(g.cfg.KeyHash.Hash(key))
	v, gen := g.tokens.get(k, now)
	if v != nil {
		if v.appID != app.ID || v.keyID == "" {
			return nil, nil
		}
		return v, nil
	}
	st, err := g.cfg.Store.APIKeyByHash(ctx, k[:])
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !st.Usable(app.ID, now) {
		return nil, nil
	}
	v = newVerifiedKey(st, app.ID, now)
	g.tokens.put(k, v, gen, now)
	return v, nil
}

// newVerifiedKey is the cache entry of a usable key: a personal key calls as its user
// (metered like the user's OAuth calls); a developer key as itself (sub and client are
// "apikey:<id>", like a client_credentials token's client).
func newVerifiedKey(st store.APIKeyStatus, appID string, now time.Time) *verified {
	caller := "apikey:" + st.ID
	sub := caller
	if st.UserID != "" {
		sub = st.UserID
	}
	exp := now.Add(keyCacheTTL)
	if st.ExpiresAt != nil && st.ExpiresAt.Before(exp) {
		exp = *st.ExpiresAt
	}
	v := newVerified(oauth.AccessClaims{Subject: sub, ClientID: caller, Scope: strings.Join(st.Scopes, " "), Expiry: exp}, appID)
	v.keyID, v.userID = st.ID, st.UserID
	return v
}
