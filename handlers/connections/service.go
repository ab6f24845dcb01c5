package connections

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/loadcache"
	"github.com/authgpts/authgpts/store/notify"
)

// RefreshLeeway: a token is refreshed this long before it expires (DESIGN.md).
const RefreshLeeway = 5 * time.Minute

// tokenCacheTTL bounds how long an instance hands out a decrypted token without reading
// its row again; disconnects and refreshes on any instance evict it at once (NOTIFY).
const tokenCacheTTL = 30 * time.Second

// providerCacheTTL bounds how long an app's providers are served from memory.
const providerCacheTTL = 30 * time.Second

// Errors of the hand-over; the gateway and the token endpoint turn them into answers.
var (
	ErrNotLinked    = errors.New("connections: the user has not linked an account at this provider")
	ErrNeedsReauth  = errors.New("connections: the linked account needs reauthorization")
	ErrUnknown      = errors.New("connections: the app declares no such provider")
	ErrNotConfigure = errors.New("connections: the provider has no client ID or secret yet")
	// ErrUnavailable: the provider could not be reached to refresh the token; the
	// account keeps its status and the next call tries again.
	ErrUnavailable = errors.New("connections: the provider is unreachable")
)

// Config is what the service is built from.
type Config struct {
	Store   *store.Store
	Vault   oauth.Vault
	Hasher  oauth.Hasher // hashes state values
	BaseURL string       // AUTHGPTS_BASE_URL: the callback is <base>/connections/callback
	// HTTP calls the providers' token, revocation and userinfo endpoints (nil: a client
	// with a 10 s timeout).
	HTTP *http.Client
	Now  func() time.Time
	Log  *slog.Logger
}

// Service keeps the vault: it links accounts, hands out fresh tokens (refreshing under
// a cross-instance lock) and revokes them at the provider.
type Service struct {
	cfg        Config
	slackHTTP  *http.Client                                 // cfg.HTTP reading Slack's token answers (slack.go)
	background sync.WaitGroup                               // RevokeRemoved's revocations
	providers  *loadcache.Cache[[]store.ConnectionProvider] // by app ID
	tokens     *loadcache.Cache[cachedToken]                // by provider ID + "/" + user ID
}

type cachedToken struct {
	linkedID string
	access   string
	expires  time.Time // zero: never
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	base := cfg.HTTP.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	slackHTTP := *cfg.HTTP
	slackHTTP.Transport = slackTokens{base: base}
	return &Service{cfg: cfg, slackHTTP: &slackHTTP, providers: loadcache.New[[]store.ConnectionProvider](providerCacheTTL, 10_000),
		tokens: loadcache.New[cachedToken](tokenCacheTTL, 100_000)}
}

// CallbackURL is the redirect URI developers register at every provider.
func (s *Service) CallbackURL() string {
	return strings.TrimSuffix(s.cfg.BaseURL, "/") + "/connections/callback"
}

// Watch evicts cached providers and tokens when another instance announces a change.
func (s *Service) Watch(l *notify.Listener) error {
	return l.Subscribe(store.ConnectionsChannel, s.evict, func() { s.providers.Clear(); s.tokens.Clear() })
}

func (s *Service) evict(payload string) {
	switch {
	case strings.HasPrefix(payload, "app:"):
		appID := strings.TrimPrefix(payload, "app:")
		s.providers.Evict(func(k string, _ []store.ConnectionProvider) bool { return k == appID })
		s.tokens.Clear()
	case strings.HasPrefix(payload, "account:"):
		id := strings.TrimPrefix(payload, "account:")
		s.tokens.Evict(func(_ string, t cachedToken) bool { return t.linkedID == id })
	default:
		s.providers.Clear()
		s.tokens.Clear()
	}
}

// Providers returns an app's providers (cached).
func (s *Service) Providers(ctx context.Context, appID string) ([]store.ConnectionProvider, error) {
	return s.providers.Get(ctx, appID, s.cfg.Now(), func(ctx context.Context) ([]store.ConnectionProvider, error) {
		return s.cfg.Store.ConnectionProvidersByApp(ctx, appID)
	})
}

// SealSecret seals a provider's client secret for the provider row id under the
// newest key generation, and returns that generation with it. Called with the
// transaction that stores the row (tx), a concurrent key rotation waits for it.
func (s *Service) SealSecret(ctx context.Context, tx *store.Tx, id, secret string) (int, []byte, error) {
	keyID, err := tx.VaultKeyID(ctx)
	if err != nil {
		return 0, nil, err
	}
	sealed, err := s.cfg.Vault.Seal(keyID, []byte(secret), id, store.FieldClientSecret)
	return keyID, sealed, err
}

// oauthConfig is the golang.org/x/oauth2 client of a provider, its secret opened.
func (s *Service) oauthConfig(p store.ConnectionProvider) (*oauth2.Config, error) {
	if p.ClientID == "" || len(p.ClientSecretSealed) == 0 {
		return nil, ErrNotConfigure
	}
	secret, err := s.cfg.Vault.Open(p.KeyID, p.ClientSecretSealed, p.ID, store.FieldClientSecret)
	if err != nil {
		return nil, fmt.Errorf("connections: provider %s client secret: %w", p.ID, err)
	}
	style := oauth2.AuthStyleInParams
	if p.AuthStyle == store.AuthStyleHeader {
		style = oauth2.AuthStyleInHeader // RFC 6749 §2.3.1 client_secret_basic (Notion)
	}
	return &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: string(secret),
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthorizeURL, TokenURL: p.TokenURL, AuthStyle: style},
		RedirectURL:  s.CallbackURL(),
		Scopes:       requestScopes(p),
	}, nil
}

// httpContext carries the HTTP client x/oauth2 uses for p's token requests.
func (s *Service) httpContext(ctx context.Context, p store.ConnectionProvider) context.Context {
	client := s.cfg.HTTP
	if p.Preset == "slack" {
		client = s.slackHTTP
	}
	return context.WithValue(ctx, oauth2.HTTPClient, client)
}

// AuthCodeURL is the provider's authorization URL for state (and the PKCE verifier's
// S256 challenge when the provider supports PKCE).
func (s *Service) AuthCodeURL(p store.ConnectionProvider, state, verifier string) (string, error) {
	cfg, err := s.oauthConfig(p)
	if err != nil {
		return "", err
	}
	opts := authorizeOptions(p)
	if verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	return cfg.AuthCodeURL(state, opts...), nil
}

// Link redeems an authorization code at the provider and stores the account for
// userID, sealed. store.ErrConflict: the provider account is another user's here.
func (s *Service) Link(ctx context.Context, p store.ConnectionProvider, userID, code, verifier string) (store.LinkedAccount, error) {
	cfg, err := s.oauthConfig(p)
	if err != nil {
		return store.LinkedAccount{}, err
	}
	var opts []oauth2.AuthCodeOption
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	tok, err := cfg.Exchange(s.httpContext(ctx, p), code, opts...)
	if err != nil {
		return store.LinkedAccount{}, fmt.Errorf("connections: code exchange at %s: %w", p.Provider, scrub(err))
	}
	accountID, name := s.identity(ctx, p, tok)
	l := store.LinkedAccount{ProviderID: p.ID, UserID: userID, AccountID: accountID, AccountName: name,
		Scopes: grantedScopes(tok, p.Scopes)}
	now := s.cfg.Now()
	err = s.cfg.Store.InTx(ctx, func(tx *store.Tx) error {
		existing, err := tx.LinkedAccount(ctx, p.ID, userID)
		switch {
		case err == nil:
			l.ID = existing.ID // the values are sealed for the row they go into
		case errors.Is(err, store.ErrNotFound):
			l.ID = store.NewRowID()
		default:
			return err
		}
		if err := s.sealTokens(ctx, tx, &l, tok, now); err != nil {
			return err
		}
		return tx.SaveLinkedAccount(ctx, l, now)
	})
	return l, err
}

// sealTokens seals tok's tokens into l under the newest key generation.
func (s *Service) sealTokens(ctx context.Context, tx *store.Tx, l *store.LinkedAccount, tok *oauth2.Token, now time.Time) error {
	keyID, err := tx.VaultKeyID(ctx)
	if err != nil {
		return err
	}
	l.KeyID = keyID
	if l.AccessSealed, err = s.cfg.Vault.Seal(keyID, []byte(tok.AccessToken), l.ID, store.FieldAccess); err != nil {
		return err
	}
	l.RefreshSealed = nil
	if tok.RefreshToken != "" {
		if l.RefreshSealed, err = s.cfg.Vault.Seal(keyID, []byte(tok.RefreshToken), l.ID, store.FieldRefresh); err != nil {
			return err
		}
	}
	// expires_in is read against our clock, not oauth2's (tests inject the clock). No
	// expires_in (GitHub OAuth apps): the token does not expire and is never refreshed.
	l.ExpiresAt = nil
	if tok.ExpiresIn > 0 {
		exp := now.Add(time.Duration(tok.ExpiresIn) * time.Second).UTC()
		l.ExpiresAt = &exp
	}
	return nil
}

// identity names the provider account: from its userinfo endpoint when it has one,
// else from fields of the token response (Notion's workspace, Slack's user). Failures
// leave it unnamed; the link still works.
func (s *Service) identity(ctx context.Context, p store.ConnectionProvider, tok *oauth2.Token) (id, name string) {
	str := func(v any) string {
		switch v := v.(type) {
		case string:
			return v
		case json.Number:
			return v.String()
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}
	if p.UserinfoURL == "" {
		id, name = str(tok.Extra("bot_id")), str(tok.Extra("workspace_name"))
		if u, ok := tok.Extra("authed_user").(map[string]any); ok {
			id = str(u["id"])
		}
		if team, ok := tok.Extra("team").(map[string]any); ok && name == "" {
			name = str(team["name"]) // Slack's workspace
		}
		return id, name
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.UserinfoURL, nil)
	if err != nil {
		return "", ""
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		s.cfg.Log.Warn("connections: userinfo unreachable", "provider", p.Provider, "err", scrub(err))
		return "", ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.cfg.Log.Warn("connections: userinfo refused", "provider", p.Provider, "status", resp.StatusCode)
		return "", ""
	}
	var info map[string]any
	dec := json.NewDecoder(io.LimitReader(resp.Body, 1<<20))
	dec.UseNumber()
	if dec.Decode(&info) != nil {
		return "", ""
	}
	for _, k := range []string{"sub", "id"} {
		if id = str(info[k]); id != "" {
			break
		}
	}
	for _, k := range []string{"email", "login", "preferred_username", "name"} {
		if name = str(info[k]); name != "" {
			break
		}
	}
	return id, name
}

// Token is a provider access token handed to the developer's API.
type Token struct {
	Access  string
	Expires time.Time // zero: does not expire
}

// AccessToken returns userID's fresh access token at p: from memory when it has more
// than RefreshLeeway to live, else refreshed under the account's advisory lock, so
// that of every caller on every instance one refreshes and the others wait for it and
// get the same new token.
func (s *Service) AccessToken(ctx context.Context, p store.ConnectionProvider, userID string) (Token, error) {
	now := s.cfg.Now()
	key := p.ID + "/" + userID
	load := func(ctx context.Context) (cachedToken, error) { return s.load(ctx, p, userID) }
	t, err := s.tokens.Get(ctx, key, now, load)
	if err == nil && stale(t.expires, now) {
		t, err = s.tokens.Load(ctx, key, key, now, load)
	}
	if err != nil {
		return Token{}, err
	}
	return Token{Access: t.access, Expires: t.expires}, nil
}

func stale(expires, now time.Time) bool {
	return !expires.IsZero() && !now.Add(RefreshLeeway).Before(expires)
}

// load reads the account and, when its token is stale, refreshes it under the lock.
func (s *Service) load(ctx context.Context, p store.ConnectionProvider, userID string) (cachedToken, error) {
	l, err := s.cfg.Store.LinkedAccount(ctx, p.ID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return cachedToken{}, ErrNotLinked
	}
	if err != nil {
		return cachedToken{}, err
	}
	if err := usable(l); err != nil {
		return cachedToken{}, err
	}
	if l.ExpiresAt == nil || !stale(*l.ExpiresAt, s.cfg.Now()) {
		return s.open(l)
	}
	var out cachedToken
	var failed, gone bool
	err = s.cfg.Store.InTx(ctx, func(tx *store.Tx) error {
		// Lock, re-read, refresh only if still stale, store, commit: whoever waited on
		// the lock reads the token the first caller stored.
		l, err := tx.LockLinkedAccount(ctx, p.ID, l.ID)
		if err != nil {
			return err
		}
		if err := usable(l); err != nil {
			return err
		}
		now := s.cfg.Now()
		if l.ExpiresAt == nil || !stale(*l.ExpiresAt, now) {
			out, err = s.open(l)
			return err
		}
		tok, err := s.refresh(ctx, p, l)
		switch {
		case err != nil && refusedByProvider(err):
			// The provider refused (invalid_grant, a revoked app…): recorded and
			// committed; the caller gets ErrNeedsReauth.
			s.cfg.Log.Warn("connections: refresh refused", "provider", p.Provider, "linked_account_id", l.ID, "err", scrub(err))
			failed = true
			return tx.SetLinkedStatus(ctx, l.ID, store.ConnectionNeedsReauth, now)
		case err != nil:
			// Unreachable or broken: nothing is recorded; a later call tries again.
			s.cfg.Log.Warn("connections: refresh failed", "provider", p.Provider, "linked_account_id", l.ID, "err", scrub(err))
			return ErrUnavailable
		}
		if tok.RefreshToken == "" && l.RefreshSealed != nil {
			if old, err := s.cfg.Vault.Open(l.KeyID, l.RefreshSealed, l.ID, store.FieldRefresh); err == nil {
				tok.RefreshToken = string(old) // the provider kept the refresh token
			}
		}
		l.Scopes = grantedScopes(tok, l.Scopes)
		if err := s.sealTokens(ctx, tx, &l, tok, now); err != nil {
			return err
		}
		switch err := tx.UpdateLinkedTokens(ctx, l, now); {
		case errors.Is(err, store.ErrNotFound):
			// Revoked or disconnected while the provider answered: what it just issued is
			// revoked there too, never stored as the account's.
			gone = true
			return tx.QueueRevocationOfTokens(ctx, l, now)
		case err != nil:
			return err
		}
		out = cachedToken{linkedID: l.ID, access: tok.AccessToken}
		if l.ExpiresAt != nil {
			out.expires = *l.ExpiresAt
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound), gone:
		// Disconnected, revoked or its provider removed while this waited or refreshed.
		return cachedToken{}, ErrNotLinked
	case err != nil:
		return cachedToken{}, err
	case failed:
		return cachedToken{}, ErrNeedsReauth
	}
	return out, nil
}

// refusedByProvider reports whether a refresh failed because the provider refused it
// (invalid_grant, a revoked app…: reauthorization is needed), not because it could not
// answer just then (a 5xx, 429, 408 or temporarily_unavailable: a later call tries
// again).
func refusedByProvider(err error) bool {
	if errors.Is(err, errNoRefreshToken) {
		return true
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	if re.Response != nil {
		switch st := re.Response.StatusCode; {
		case st >= http.StatusInternalServerError, st == http.StatusTooManyRequests, st == http.StatusRequestTimeout:
			return false
		}
	}
	return re.ErrorCode != "temporarily_unavailable"
}

func usable(l store.LinkedAccount) error {
	switch l.Status {
	case store.ConnectionActive:
		return nil
	case store.ConnectionNeedsReauth:
		return ErrNeedsReauth
	}
	return ErrNotLinked
}

func (s *Service) open(l store.LinkedAccount) (cachedToken, error) {
	access, err := s.cfg.Vault.Open(l.KeyID, l.AccessSealed, l.ID, store.FieldAccess)
	if err != nil {
		return cachedToken{}, fmt.Errorf("connections: linked account %s: %w", l.ID, err)
	}
	t := cachedToken{linkedID: l.ID, access: string(access)}
	if l.ExpiresAt != nil {
		t.expires = *l.ExpiresAt
	}
	return t, nil
}

// refresh redeems l's refresh token at the provider (one HTTP call).
func (s *Service) refresh(ctx context.Context, p store.ConnectionProvider, l store.LinkedAccount) (*oauth2.Token, error) {
	if l.RefreshSealed == nil {
		return nil, errNoRefreshToken
	}
	refresh, err := s.cfg.Vault.Open(l.KeyID, l.RefreshSealed, l.ID, store.FieldRefresh)
	if err != nil {
		return nil, err
	}
	cfg, err := s.oauthConfig(p)
	if err != nil {
		return nil, err
	}
	// An expired token makes the source refresh at once, with our refresh token.
	// The caller scrubs the error before logging it (a RetrieveError quotes the body).
	return cfg.TokenSource(s.httpContext(ctx, p), &oauth2.Token{RefreshToken: string(refresh), Expiry: time.Unix(1, 0)}).Token()
}

var errNoRefreshToken = errors.New("the provider issued no refresh token")

// Header is one connection header the gateway adds to a forwarded call.
type Header struct{ Name, Value string }

// HeaderPrefix starts the name of every connection header.
const HeaderPrefix = "X-AuthGPTs-Connection-"

// Headers returns the connection headers for userID's call to app: one per provider
// delivered by header at which the user linked an account (providers the user has not
// linked, or whose link needs reauthorization, add nothing).
func (s *Service) Headers(ctx context.Context, appID, userID string) ([]Header, error) {
	providers, err := s.Providers(ctx, appID)
	if err != nil {
		return nil, err
	}
	var out []Header
	for _, p := range providers {
		if p.Delivery != store.DeliveryHeader {
			continue
		}
		t, err := s.AccessToken(ctx, p, userID)
		if errors.Is(err, ErrNotLinked) || errors.Is(err, ErrNeedsReauth) || errors.Is(err, ErrNotConfigure) || errors.Is(err, ErrUnavailable) {
			continue // the call goes through without that provider's header
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Header{Name: HeaderPrefix + p.Provider, Value: t.Access})
	}
	return out, nil
}

// TokenTypePrefix starts the requested_token_type of a token exchange for a provider.
const TokenTypePrefix = "urn:authgpts:connection:"

// Exchange is the RFC 8693 hand-over for the token endpoint: userID's token at the
// app's provider, as oauth errors the endpoint writes as they are.
func (s *Service) Exchange(ctx context.Context, appID, userID, requestedType string) (Token, error) {
	name, ok := strings.CutPrefix(requestedType, TokenTypePrefix)
	if !ok {
		return Token{}, oauth.ErrInvalidTarget.WithDescription("requested_token_type must be " + TokenTypePrefix + "<provider>.")
	}
	providers, err := s.Providers(ctx, appID)
	if err != nil {
		return Token{}, err
	}
	for _, p := range providers {
		if p.Provider != name {
			continue
		}
		t, err := s.AccessToken(ctx, p, userID)
		switch {
		case errors.Is(err, ErrNotLinked):
			return Token{}, oauth.ErrInvalidGrant.WithDescription("The user has not linked an account at this provider.")
		case errors.Is(err, ErrNeedsReauth):
			return Token{}, oauth.ErrInvalidGrant.WithDescription("The user's linked account needs reauthorization: ask them to reconnect it on their account page.")
		case errors.Is(err, ErrNotConfigure):
			return Token{}, oauth.ErrInvalidTarget.WithDescription("This provider is not configured yet.")
		case errors.Is(err, ErrUnavailable):
			return Token{}, oauth.ErrTemporarilyUnavailable.WithDescription("The provider could not be reached to refresh the token; try again.")
		}
		return t, err
	}
	return Token{}, oauth.ErrInvalidTarget.WithDescription("This app declares no such connection.")
}

// Disconnect deletes the linked account id of one of userIDs (one person's linked
// identities) and revokes its tokens at the provider after the commit (best effort).
func (s *Service) Disconnect(ctx context.Context, userIDs []string, id string) error {
	if err := s.cfg.Store.DisconnectLinkedAccount(ctx, userIDs, id, s.cfg.Now()); err != nil {
		return err
	}
	s.tokens.Evict(func(_ string, t cachedToken) bool { return t.linkedID == id })
	s.RevokePending(context.WithoutCancel(ctx))
	return nil
}

// AccountsEnded is called after a commit that ended userID's linked accounts (a grant
// revoked, the account deleted): this instance forgets their cached tokens at once,
// without waiting for its own NOTIFY, and the queued revocations go to the providers.
func (s *Service) AccountsEnded(ctx context.Context, userID string) {
	suffix := "/" + userID
	s.tokens.Evict(func(k string, _ cachedToken) bool { return strings.HasSuffix(k, suffix) })
	s.RevokePending(ctx)
}

// RevokePending sends the queued revocations to their providers (RFC 7009): the refresh
// token, then the access token. Best effort: failures are logged (without tokens) and
// retried by the next call on any instance. It returns how many were done.
func (s *Service) RevokePending(ctx context.Context) int {
	// Batches of 10 (each claimed for its calls' time), 50 rows a call at most: it also
	// runs in the request that ended the accounts.
	const batch, batches = 10, 5
	total := 0
	for range batches {
		if ctx.Err() != nil {
			break
		}
		done, claimed, err := s.cfg.Store.PendingRevocations(ctx, s.cfg.Now(), batch, func(r store.PendingRevocation) bool {
			p, err := s.cfg.Store.ConnectionProviderByID(ctx, r.ProviderID)
			if err != nil || p.RevokeURL == "" {
				return true // nothing to revoke at
			}
			cfg, err := s.oauthConfig(p)
			if err != nil {
				return true
			}
			return s.revokeTokens(ctx, p, cfg, r)
		})
		total += done
		if err != nil {
			s.cfg.Log.Error("connections: revocation queue", "err", err)
			break
		}
		if claimed < batch {
			break
		}
	}
	return total
}

// revoke is one RFC 7009 request, client authenticated as at the token endpoint.
// revokeTokens revokes r's refresh and access tokens at p; false when the provider
// could not be told (worth another try).
func (s *Service) revokeTokens(ctx context.Context, p store.ConnectionProvider, cfg *oauth2.Config, r store.PendingRevocation) bool {
	open := func(sealed []byte, field string) string {
		if len(sealed) == 0 {
			return ""
		}
		token, err := s.cfg.Vault.Open(r.KeyID, sealed, r.SealedRowID, field)
		if err != nil {
			return ""
		}
		return string(token)
	}
	access, refresh := open(r.AccessSealed, store.FieldAccess), open(r.RefreshSealed, store.FieldRefresh)
	if p.Preset == "slack" {
		return s.revokeSlack(ctx, p, cfg, access, refresh)
	}
	ok := true
	for _, v := range []struct{ token, hint string }{{refresh, "refresh_token"}, {access, "access_token"}} {
		if v.token == "" {
			continue
		}
		if err := s.revoke(ctx, p, cfg, v.token, v.hint); err != nil {
			s.cfg.Log.Warn("connections: revocation at the provider failed", "provider", p.Provider, "err", err)
			ok = false
		}
	}
	return ok
}

// revokeSlack ends a Slack authorization. auth.revoke is authenticated by the token it
// revokes and revoking the user token ends the authorization, but an expired token
// (rotation: 12 hours) can revoke nothing while its refresh token still works: then the
// refresh token is redeemed once and the fresh access token revoked.
func (s *Service) revokeSlack(ctx context.Context, p store.ConnectionProvider, cfg *oauth2.Config, access, refresh string) bool {
	err := errSlackExpired
	if access != "" {
		err = s.revoke(ctx, p, cfg, access, "access_token")
	}
	if errors.Is(err, errSlackExpired) && refresh != "" {
		tok, rerr := cfg.TokenSource(s.httpContext(ctx, p), &oauth2.Token{RefreshToken: refresh, Expiry: time.Unix(1, 0)}).Token()
		switch {
		case rerr == nil:
			err = s.revoke(ctx, p, cfg, tok.AccessToken, "access_token")
		case refusedByProvider(rerr):
			err = nil // the refresh token no longer works either
		default:
			err = scrub(rerr)
		}
	}
	if err != nil && !errors.Is(err, errSlackExpired) {
		s.cfg.Log.Warn("connections: revocation at the provider failed", "provider", p.Provider, "err", err)
		return false
	}
	return true
}

// removedRevokeTimeout bounds the revocations of a removed provider's tokens.
const removedRevokeTimeout = 2 * time.Minute

// RevokeRemoved revokes at p, in the background, the tokens of the linked accounts that
// went with p when its developer removed it (store.DeleteConnectionProvider). The rows
// are gone, so the revocation outbox cannot keep them: this is best effort, once, and
// lost if the instance stops first (Close waits for it until its deadline).
func (s *Service) RevokeRemoved(p store.ConnectionProvider, tokens []store.PendingRevocation) {
	gone := make(map[string]bool, len(tokens))
	for _, r := range tokens {
		gone[r.SealedRowID] = true
	}
	s.tokens.Evict(func(_ string, t cachedToken) bool { return gone[t.linkedID] })
	if p.RevokeURL == "" || len(tokens) == 0 {
		return
	}
	cfg, err := s.oauthConfig(p)
	if err != nil {
		return
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		ctx, cancel := context.WithTimeout(context.Background(), removedRevokeTimeout)
		defer cancel()
		failed := 0
		for _, r := range tokens {
			if !s.revokeTokens(ctx, p, cfg, r) {
				failed++
			}
		}
		s.cfg.Log.Info("connections: removed provider's tokens revoked", "provider", p.Provider,
			"accounts", len(tokens), "failed", failed)
	}()
}

// Close waits for background revocations (RevokeRemoved) until ctx ends.
func (s *Service) Close(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		s.background.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) revoke(ctx context.Context, p store.ConnectionProvider, cfg *oauth2.Config, token, hint string) error {
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if p.AuthStyle != store.AuthStyleHeader {
		form.Set("client_id", cfg.ClientID)
		form.Set("client_secret", cfg.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if p.AuthStyle == store.AuthStyleHeader {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	resp, err := s.cfg.HTTP.Do(req)
	if err != nil {
		return scrub(err)
	}
	defer resp.Body.Close()
	// RFC 7009 §2.2: 200 whatever the token was; 503 asks to retry.
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("revocation endpoint answered %d", resp.StatusCode)
	}
	if p.Preset == "slack" {
		return slackRevoked(resp.Body)
	}
	return nil
}

// Run drains the revocation queue and sweeps expired states every interval until ctx
// ends (on every instance: the queue is shared with SKIP LOCKED).
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.RevokePending(ctx)
		if _, err := s.cfg.Store.DeleteExpiredConnectionStates(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
			s.cfg.Log.Error("connections: sweep states", "err", err)
		}
	}
}

// scrub keeps an oauth2 error's code and drops the response body it quotes, which may
// hold a token: errors are logged.
func scrub(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		code := re.ErrorCode
		if code == "" {
			code = "no error code"
		}
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return fmt.Errorf("provider answered %d (%s)", status, code)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s %s: %w", ue.Op, redactURL(ue.URL), ue.Err)
	}
	return err
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(url)"
	}
	u.RawQuery = ""
	return u.String()
}

// HeaderValues is Headers as canonical header values, for the gateway.
func (s *Service) HeaderValues(ctx context.Context, appID, userID string) (http.Header, error) {
	hs, err := s.Headers(ctx, appID, userID)
	if err != nil || len(hs) == 0 {
		return nil, err
	}
	out := make(http.Header, len(hs))
	for _, h := range hs {
		out.Set(h.Name, h.Value)
	}
	return out, nil
}

// ExchangeToken is Exchange for the token endpoint.
func (s *Service) ExchangeToken(ctx context.Context, appID, userID, requestedType string) (string, time.Time, error) {
	t, err := s.Exchange(ctx, appID, userID, requestedType)
	return t.Access, t.Expires, err
}
