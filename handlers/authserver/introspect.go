package authserver

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// introspect is RFC 7662 token introspection, for resource servers: the caller
// authenticates as a confidential client of an app and learns about tokens of that app
// only; any other token, and every expired, revoked or malformed one, is
// {"active": false}.
func (h *Handler) introspect(c *gin.Context) {
	form, err := oauth.ParseRequestBody(c.Request)
	if err != nil {
		writeError(c, err, false)
		return
	}
	ctx := c.Request.Context()
	caller, creds, err := h.authenticateClient(ctx, c.Request, form)
	if err == nil && (!caller.oc.Client.IsConfidential() || caller.app == nil) {
		err = oauth.ErrInvalidClient.WithDescription("Introspection needs a confidential client of the app.")
	}
	if err != nil {
		writeError(c, err, creds.BasicUsed())
		return
	}
	token := form.Get("token")
	if token == "" {
		writeError(c, oauth.ErrInvalidRequest.WithDescription("The token parameter is missing."), false)
		return
	}
	resp, err := h.introspectToken(ctx, token, caller.app, h.now())
	if err != nil {
		writeError(c, err, false)
		return
	}
	writeJSON(c, resp)
}

var inactive = oauth.IntrospectionResponse{Active: false}

// introspectToken describes token for a caller of app. Refresh tokens are looked up by
// hash; access tokens are verified in memory (signature, issuer, expiry), then checked
// against the state of their grant, user and client (all cached, kept current by
// NOTIFY). A token is the app's when its grant is (refresh tokens) or its aud is the
// app's resource or a part of it (access tokens; the aud was set from the grant's app).
func (h *Handler) introspectToken(ctx context.Context, token string, app *appEntry, now time.Time) (oauth.IntrospectionResponse, error) {
	appID := app.oa.App.ID
	if strings.HasPrefix(token, oauth.PrefixRefreshToken) {
		st, err := h.store.RefreshTokenByHash(ctx, h.hasher.Hash(token))
		if errors.Is(err, store.ErrNotFound) {
			return inactive, nil
		}
		if err != nil {
			return inactive, err
		}
		owner, err := h.clients.get(ctx, st.ClientID)
		if err != nil {
			return inactive, err
		}
		if !st.IsLive(now) || !owner.usable() || st.GrantAppID != appID || (owner.app != nil && owner.oc.App.ID != appID) {
			return inactive, nil
		}
		return oauth.IntrospectionResponse{
			Active: true, Scope: oauth.FormatScope(intersect(st.Scopes, st.GrantScopes)), ClientID: st.ClientID,
			TokenType: "refresh_token", Exp: st.ExpiresAt.Unix(), Iat: st.CreatedAt.Unix(),
			Sub: st.UserID, Iss: h.issuer, GrantID: st.GrantID,
		}, nil
	}

	claims, err := h.verifyAccessToken(ctx, token, now)
	if err != nil {
		return inactive, nil
	}
	owner, err := h.clients.get(ctx, claims.ClientID)
	if err != nil {
		return inactive, err
	}
	if !owner.usable() || (owner.app != nil && owner.oc.App.ID != appID) || !h.audienceInApp(claims.Audience, app) {
		return inactive, nil
	}
	live, err := h.grants.isLive(ctx, claims.GrantID)
	if err != nil || !live {
		return inactive, err
	}
	return oauth.IntrospectionResponse{
		Active: true, Scope: claims.Scope, ClientID: claims.ClientID, Username: claims.Email,
		TokenType: oauth.TokenTypeBearer, Exp: claims.Expiry.Unix(), Iat: claims.IssuedAt.Unix(),
		Nbf: claims.NotBefore.Unix(), Sub: claims.Subject, Aud: claims.Audience, Iss: claims.Issuer,
		JTI: claims.JTI, GrantID: claims.GrantID,
	}, nil
}

// audienceInApp reports whether some aud is the app's resource or a resource below it.
func (h *Handler) audienceInApp(aud []string, app *appEntry) bool {
	root := app.root(h.issuer)
	for _, a := range aud {
		if oauth.ResourceCovers(root, a) {
			return true
		}
	}
	return false
}

// revoke is RFC 7009 token revocation. A refresh token or an access token of the calling
// client revokes its whole grant (and so every token issued under it). The answer is
// 200 whatever the token was (§2.2: an invalid token is not an error).
func (h *Handler) revoke(c *gin.Context) {
	form, err := oauth.ParseRequestBody(c.Request)
	if err != nil {
		writeError(c, err, false)
		return
	}
	ctx := c.Request.Context()
	client, creds, err := h.authenticateClient(ctx, c.Request, form)
	if err != nil {
		writeError(c, err, creds.BasicUsed())
		return
	}
	token := form.Get("token")
	if token == "" {
		writeError(c, oauth.ErrInvalidRequest.WithDescription("The token parameter is missing."), false)
		return
	}
	now := h.now()
	grantID := ""
	if strings.HasPrefix(token, oauth.PrefixRefreshToken) {
		st, err := h.store.RefreshTokenByHash(ctx, h.hasher.Hash(token))
		switch {
		case err == nil && st.ClientID == client.oc.Client.ID:
			grantID = st.GrantID
		case err != nil && !errors.Is(err, store.ErrNotFound):
			writeError(c, err, false)
			return
		}
	} else if claims, err := h.verifyAccessToken(ctx, token, now); err == nil && claims.ClientID == client.oc.Client.ID {
		grantID = claims.GrantID // "" for client_credentials tokens: nothing to revoke
	}
	if grantID != "" {
		err := h.store.InTx(ctx, func(tx *store.Tx) error {
			revoked, err := tx.RevokeGrantBy(ctx, grantID, store.RevokedByClient, now)
			if err != nil || !revoked {
				return err
			}
			return tx.Audit(ctx, store.AuditEntry{At: now, ActorEmail: "client:" + client.oc.Client.ID,
				Action: "grant.revoked", TargetType: "grant", TargetID: grantID, IP: c.ClientIP(),
				Details: []byte(`{"via":"oauth/revoke"}`)})
		})
		if err != nil {
			writeError(c, err, false)
			return
		}
		h.grants.revoked(grantID)
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
}
