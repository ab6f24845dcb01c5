package authserver

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// token is the token endpoint (RFC 6749 §3.2): parse, authenticate the client, run the
// grant, answer JSON with Cache-Control: no-store.
func (h *Handler) token(c *gin.Context) {
	form, err := oauth.ParseRequestBody(c.Request)
	if err != nil {
		writeError(c, err, false)
		return
	}
	grantType := form.Get("grant_type")
	switch grantType {
	case oauth.GrantAuthorizationCode, oauth.GrantRefreshToken, oauth.GrantClientCredentials:
	case oauth.GrantTokenExchange:
		if h.connections == nil {
			writeError(c, oauth.ErrUnsupportedGrantType.WithDescription("Token exchange is not available."), false)
			return
		}
	case "":
		writeError(c, oauth.ErrInvalidRequest.WithDescription("The grant_type parameter is missing."), false)
		return
	default:
		// RFC 9700 §2.4: no resource owner password credentials; no implicit either.
		writeError(c, oauth.ErrUnsupportedGrantType.WithDescription("Supported grant types: authorization_code, refresh_token, client_credentials."), false)
		return
	}
	ctx := c.Request.Context()
	client, creds, err := h.authenticateClient(ctx, c.Request, form)
	if err != nil {
		writeError(c, err, creds.BasicUsed())
		return
	}
	var resp oauth.TokenResponse
	switch grantType {
	case oauth.GrantAuthorizationCode:
		resp, err = h.exchangeCode(c, client, form)
	case oauth.GrantRefreshToken:
		resp, err = h.refresh(c, client, form)
	case oauth.GrantTokenExchange:
		var ex oauth.TokenExchangeResponse
		if ex, err = h.tokenExchange(ctx, client, form); err != nil {
			writeError(c, err, false)
			return
		}
		tokensIssued.WithLabelValues(grantType).Inc()
		writeJSON(c, ex)
		return
	default:
		resp, err = h.clientCredentials(client, form)
	}
	if err != nil {
		writeError(c, err, false)
		return
	}
	tokensIssued.WithLabelValues(grantType).Inc()
	writeJSON(c, resp)
}

// exchangeCode runs the authorization_code grant (RFC 6749 §4.1.3).
func (h *Handler) exchangeCode(c *gin.Context, client *clientEntry, form url.Values) (oauth.TokenResponse, error) {
	if client.oc.Client.Kind == store.ClientKindService {
		return oauth.TokenResponse{}, oauth.ErrUnauthorizedClient.WithDescription("Service clients use the client_credentials grant.")
	}
	code := form.Get("code")
	if code == "" {
		return oauth.TokenResponse{}, oauth.ErrInvalidRequest.WithDescription("The code parameter is missing.")
	}
	ctx, now := c.Request.Context(), h.now()
	clientID, hash := client.oc.Client.ID, h.hasher.Hash(code)
	// The code is read first and redeemed with the refresh token in one statement once
	// the request matches it, so an exchange commits once (the redemption stays guarded).
	rc, err := h.store.PeekCode(ctx, hash, clientID, now)
	switch {
	case errors.Is(err, store.ErrCodeReused):
		return oauth.TokenResponse{}, h.codeReused(c, rc.GrantID, client, now)
	case errors.Is(err, store.ErrNotFound):
		return oauth.TokenResponse{}, errCodeInvalid
	case err != nil:
		return oauth.TokenResponse{}, err
	}
	app, aud, err := h.checkCodeExchange(c, client, form, rc)
	if err != nil {
		// A refused exchange uses the code up, so a second try counts as a replay.
		if _, burnErr := h.store.RedeemCode(context.WithoutCancel(ctx), hash, clientID, now); burnErr != nil &&
			!errors.Is(burnErr, store.ErrNotFound) && !errors.Is(burnErr, store.ErrCodeReused) {
			web.Log(c).Error("use up a refused authorization code", "client_id", clientID, "err", burnErr)
		}
		return oauth.TokenResponse{}, err
	}

	refresh := oauth.NewToken(oauth.PrefixRefreshToken)
	grantID, err := h.store.RedeemCodeIssuingRefresh(ctx, hash, clientID, h.hasher.Hash(refresh),
		now.Add(app.oa.App.RefreshTokenTTL()), now)
	switch {
	case errors.Is(err, store.ErrCodeReused): // a concurrent exchange of the same code won
		return oauth.TokenResponse{}, h.codeReused(c, grantID, client, now)
	case errors.Is(err, store.ErrNotFound): // expired, revoked or suspended meanwhile
		return oauth.TokenResponse{}, errCodeInvalid
	case err != nil:
		return oauth.TokenResponse{}, err
	}
	return h.issue(client, app, aud, issueParams{
		userID: rc.UserID, email: rc.Email, issuer: rc.Issuer, subject: rc.Subject, grantID: rc.GrantID, scopes: rc.Scopes,
		nonce: rc.Nonce, authTime: rc.AuthTime, refresh: refresh, now: now, idToken: true,
	})
}

var errCodeInvalid = oauth.ErrInvalidGrant.WithDescription("The authorization code is invalid, expired, or was issued to another client.")

// codeReused revokes the grant of a replayed code and returns the error to answer:
// RFC 6749 §4.1.2 / RFC 9700 §4.2.4, a replayed code means it leaked, so every token
// issued from it dies with its grant.
func (h *Handler) codeReused(c *gin.Context, grantID string, client *clientEntry, now time.Time) error {
	h.revokeGrant(c, grantID, client, "oauth.code_reused", now)
	return oauth.ErrInvalidGrant.WithDescription("The authorization code was already used; the tokens issued from it are revoked.")
}

// checkCodeExchange checks a token request against the code it presents (user, redirect
// URI, PKCE, resource) and returns the app and the audience of the tokens.
func (h *Handler) checkCodeExchange(c *gin.Context, client *clientEntry, form url.Values, rc store.RedeemedCode) (*appEntry, string, error) {
	if rc.UserSuspended {
		return nil, "", oauth.ErrInvalidGrant.WithDescription("The user's account is suspended.")
	}
	// RFC 6749 §4.1.3: redirect_uri must be sent, identical, when the authorization
	// request carried it.
	if got := form.Get("redirect_uri"); (rc.RedirectURIGiven || got != "") && got != rc.RedirectURI {
		return nil, "", oauth.ErrInvalidGrant.WithDescription("redirect_uri does not match the authorization request.")
	}
	verifier := form.Get("code_verifier")
	switch {
	case rc.CodeChallenge == "" && verifier != "":
		// RFC 9700 §2.1.1: a verifier for a code issued without a challenge is a PKCE
		// downgrade attempt (the attacker stripped the challenge from the request).
		return nil, "", oauth.ErrInvalidGrant.WithDescription("code_verifier was sent, but the authorization request had no code_challenge.")
	case rc.CodeChallenge != "" && verifier == "":
		return nil, "", oauth.ErrInvalidGrant.WithDescription("The code_verifier parameter is missing.")
	case rc.CodeChallenge != "" && !oauth.VerifyPKCE(rc.CodeChallenge, rc.CodeChallengeMethod, verifier):
		return nil, "", oauth.ErrInvalidGrant.WithDescription("The code_verifier does not match the code_challenge.")
	}
	// RFC 8707 §2.2: the token is for the resource the code is bound to, or a part of it.
	app, err := h.grantApp(c.Request.Context(), client, rc.AppID)
	if err != nil {
		return nil, "", err
	}
	aud, err := h.tokenResource(form, app, rc.Resource)
	if err != nil {
		return nil, "", err
	}
	return app, aud, nil
}

// refresh runs the refresh_token grant (RFC 6749 §6) with rotation: the presented token
// is exchanged for its successor. Presenting it again within oauth.RefreshGrace answers
// with the same successor; after that it revokes the grant (RFC 9700 §4.14.2).
func (h *Handler) refresh(c *gin.Context, client *clientEntry, form url.Values) (oauth.TokenResponse, error) {
	if client.oc.Client.Kind == store.ClientKindService {
		return oauth.TokenResponse{}, oauth.ErrUnauthorizedClient.WithDescription("Service clients use the client_credentials grant.")
	}
	token := form.Get("refresh_token")
	if token == "" {
		return oauth.TokenResponse{}, oauth.ErrInvalidRequest.WithDescription("The refresh_token parameter is missing.")
	}
	requested, err := oauth.ParseScope(form.Get("scope"))
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	ctx, now := c.Request.Context(), h.now()
	st, err := h.store.RefreshTokenByHash(ctx, h.hasher.Hash(token))
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && st.ClientID != client.oc.Client.ID):
		return oauth.TokenResponse{}, errRefreshInvalid
	case err != nil:
		return oauth.TokenResponse{}, err
	}
	if st.RevokedAt != nil || st.GrantRevoked || st.UserSuspended {
		return oauth.TokenResponse{}, errRefreshInvalid
	}
	app, err := h.grantApp(ctx, client, st.GrantAppID)
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	aud, err := h.tokenResource(form, app, st.Resource)
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	// RFC 6749 §6: the new access token's scope may narrow, never widen, the grant.
	scopes := intersect(st.Scopes, st.GrantScopes)
	if len(requested) > 0 {
		if !oauth.IsSubset(requested, scopes) {
			return oauth.TokenResponse{}, oauth.ErrInvalidScope.WithDescription("The requested scope exceeds what was granted.")
		}
		scopes = requested
	}
	successor := h.rotator.Successor(token)
	successorHash := h.hasher.Hash(successor)
	params := issueParams{
		userID: st.UserID, email: st.Email, issuer: st.Issuer, subject: st.Subject, grantID: st.GrantID, scopes: scopes,
		authTime: st.AuthTime, refresh: successor, now: now,
	}
	if st.RotatedAt == nil {
		if !now.Before(st.ExpiresAt) {
			return oauth.TokenResponse{}, errRefreshInvalid
		}
		rotated, err := h.store.RotateRefreshToken(ctx, st.ID, successorHash, now.Add(app.oa.App.RefreshTokenTTL()), now)
		if err != nil {
			return oauth.TokenResponse{}, err
		}
		if rotated {
			return h.issue(client, app, aud, params)
		}
		// A concurrent refresh with the same token won the swap: this is a repeat.
		if st, err = h.store.RefreshTokenByHash(ctx, h.hasher.Hash(token)); err != nil {
			return oauth.TokenResponse{}, err
		}
		if st.RotatedAt == nil || st.RevokedAt != nil || st.GrantRevoked {
			return oauth.TokenResponse{}, errRefreshInvalid
		}
	}

	// The token was rotated before: a repeat.
	if now.Sub(*st.RotatedAt) > oauth.RefreshGrace {
		// After the grace window a rotated token means it was stolen or replayed.
		h.revokeGrant(c, st.GrantID, client, "oauth.refresh_token_reused", now)
		return oauth.TokenResponse{}, oauth.ErrInvalidGrant.WithDescription("The refresh token was already used; the grant is revoked. Sign in again.")
	}
	// Inside the window (lost response, concurrent refreshes): the same successor, as
	// long as it is still the live token of the family.
	child, err := h.store.RefreshTokenByHash(ctx, successorHash)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !child.IsLive(now)) {
		return oauth.TokenResponse{}, errRefreshInvalid
	}
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	return h.issue(client, app, aud, params)
}

var errRefreshInvalid = oauth.ErrInvalidGrant.WithDescription("The refresh token is invalid, expired or revoked.")

// clientCredentials runs the client_credentials grant (RFC 6749 §4.4) for service
// clients: a token whose subject is the client, no refresh token, no database access.
func (h *Handler) clientCredentials(client *clientEntry, form url.Values) (oauth.TokenResponse, error) {
	if client.oc.Client.Kind != store.ClientKindService {
		return oauth.TokenResponse{}, oauth.ErrUnauthorizedClient.WithDescription("Only service clients may use the client_credentials grant.")
	}
	scopes, err := oauth.ParseScope(form.Get("scope"))
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	if len(scopes) == 0 {
		for _, s := range client.defaultScopes {
			if !slices.Contains(oauth.BuiltinScopes, s) {
				scopes = append(scopes, s)
			}
		}
	}
	for _, s := range scopes {
		// The built-in scopes describe a user; a service client acts for no user.
		if !client.hasScope(s) || slices.Contains(oauth.BuiltinScopes, s) {
			return oauth.TokenResponse{}, oauth.ErrInvalidScope.WithDescription("The scope " + quoteScope(s) + " is not available to service clients of this app.")
		}
	}
	aud, err := h.tokenResource(form, client.app, "")
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	return h.issue(client, client.app, aud, issueParams{scopes: scopes, now: h.now()})
}

// issueParams is what a token response is made of.
type issueParams struct {
	userID   string // "" for client_credentials: the subject is the client
	email    string
	issuer   string // the user's identity source issuer, "" for email-code accounts
	subject  string // the upstream subject
	grantID  string
	scopes   []string
	nonce    string
	authTime time.Time
	refresh  string
	now      time.Time
	// idToken asks for an ID token when openid was granted: at the code exchange, not at
	// a refresh (OpenID Connect Core §12.2 makes it optional there; RS256 signing costs
	// 0.8 ms, more than the rest of a refresh).
	idToken bool
}

// issue signs the access token for aud, a resource of a (and the ID token when asked for
// and openid was granted) and builds the response.
func (h *Handler) issue(client *clientEntry, a *appEntry, aud string, p issueParams) (oauth.TokenResponse, error) {
	ks := h.keys.KeySet()
	app := a.oa.App
	subject := p.userID
	if subject == "" {
		subject = client.oc.Client.ID
	}
	claims := oauth.AccessClaims{
		Issuer:   h.issuer,
		Subject:  subject,
		ClientID: client.oc.Client.ID,
		Scope:    oauth.FormatScope(p.scopes),
		JTI:      newJTI(),
		GrantID:  p.grantID,
		Audience: []string{aud},
		IssuedAt: p.now,
		Expiry:   p.now.Add(app.AccessTokenTTL()),
	}
	idSubject := p.userID
	if p.userID != "" && p.issuer != "" {
		claims.UpstreamSubject, claims.IdP, idSubject = p.subject, p.issuer, p.subject
	}
	withEmail := p.userID != "" && oauth.HasScope(p.scopes, "email") && p.email != ""
	if withEmail {
		claims.Email = p.email
	}
	at, err := ks.SignAccessToken(claims)
	if err != nil {
		return oauth.TokenResponse{}, err
	}
	resp := oauth.TokenResponse{
		AccessToken:  at,
		TokenType:    oauth.TokenTypeBearer,
		ExpiresIn:    int64(app.AccessTokenTTL() / time.Second),
		Scope:        claims.Scope,
		RefreshToken: p.refresh,
	}
	if p.idToken && p.userID != "" && oauth.HasScope(p.scopes, "openid") {
		id := oauth.IDClaims{
			Issuer:          h.issuer,
			Subject:         idSubject,
			IdP:             claims.IdP,
			Audience:        client.oc.Client.ID,
			Nonce:           p.nonce,
			AuthTime:        p.authTime,
			IssuedAt:        p.now,
			Expiry:          p.now.Add(oauth.IDTokenTTL),
			AccessTokenHash: oauth.AccessTokenHash(at, h.keys.IDTokenAlg()),
		}
		if withEmail {
			id.Email, id.EmailVerified = p.email, true // an emailed code, or an upstream that said verified
		}
		if resp.IDToken, err = ks.SignIDToken(id); err != nil {
			return oauth.TokenResponse{}, err
		}
	}
	return resp, nil
}

// revokeGrant revokes a grant after a replay was detected, records it in the audit log
// and the local revocation set, and logs a warning. Failures are logged: the request is
// refused either way.
func (h *Handler) revokeGrant(c *gin.Context, grantID string, client *clientEntry, action string, now time.Time) {
	ctx := context.WithoutCancel(c.Request.Context())
	err := h.store.InTx(ctx, func(tx *store.Tx) error {
		revoked, err := tx.RevokeGrant(ctx, grantID, now)
		if err != nil || !revoked {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{At: now, ActorEmail: "client:" + client.oc.Client.ID, Action: action,
			TargetType: "grant", TargetID: grantID, IP: c.ClientIP()})
	})
	if err != nil {
		web.Log(c).Error("revoke grant after replay", "grant_id", grantID, "err", err)
		return
	}
	h.grants.revoked(grantID)
	web.Log(c).Warn("credential replay: grant revoked", "action", action, "grant_id", grantID, "client_id", client.oc.Client.ID)
}

// intersect returns the elements of a that are also in b, in a's order.
func intersect(a, b []string) []string {
	out := make([]string, 0, len(a))
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// quoteScope quotes a scope token for an error description (single quotes: RFC 6749
// §5.2 excludes '"'); scope tokens never hold '\' or '"'.
func quoteScope(s string) string {
	if len(s) > 64 {
		return "(too long)"
	}
	return "'" + s + "'"
}

var errSubjectToken = oauth.ErrInvalidGrant.WithDescription("The subject_token is not a valid access token of a user of this app.")

// tokenExchange is RFC 8693 for connections: the app's service client trades a user's
// access token for this app for the user's token at one of the app's providers
// (requested_token_type urn:authgpts:connection:<provider>).
func (h *Handler) tokenExchange(ctx context.Context, client *clientEntry, form url.Values) (oauth.TokenExchangeResponse, error) {
	if client.oc.Client.Kind != store.ClientKindService || client.app == nil {
		return oauth.TokenExchangeResponse{}, oauth.ErrUnauthorizedClient.WithDescription("Only the app's service client may exchange tokens.")
	}
	subject := form.Get("subject_token")
	if subject == "" || form.Get("requested_token_type") == "" {
		return oauth.TokenExchangeResponse{}, oauth.ErrInvalidRequest.WithDescription("subject_token and requested_token_type are required.")
	}
	if form.Get("subject_token_type") != oauth.TokenTypeAccessToken {
		return oauth.TokenExchangeResponse{}, oauth.ErrInvalidRequest.WithDescription("subject_token_type must be " + oauth.TokenTypeAccessToken + ".")
	}
	if strings.HasPrefix(subject, oauth.PrefixRefreshToken) {
		return oauth.TokenExchangeResponse{}, errSubjectToken
	}
	now := h.now()
	// The subject token must be live and for this app (its aud is the app's resource):
	// a token of another app's user names nobody here.
	info, err := h.introspectToken(ctx, subject, client.app, now)
	if err != nil {
		return oauth.TokenExchangeResponse{}, err
	}
	if !info.Active || info.GrantID == "" {
		return oauth.TokenExchangeResponse{}, errSubjectToken
	}
	rtt := form.Get("requested_token_type")
	access, expires, err := h.connections.ExchangeToken(ctx, client.app.oa.App.ID, info.Sub, rtt)
	if err != nil {
		return oauth.TokenExchangeResponse{}, err
	}
	resp := oauth.TokenExchangeResponse{AccessToken: access, IssuedTokenType: rtt, TokenType: oauth.TokenTypeBearer}
	if !expires.IsZero() {
		resp.ExpiresIn = max(int64(expires.Sub(now).Seconds()), 1)
	}
	return resp, nil
}
