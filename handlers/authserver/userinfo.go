package authserver

import (
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// userinfo is the OpenID Connect UserInfo endpoint (Core §5.3), GET or POST with a
// Bearer access token in the Authorization header (never the query, RFC 9700 §4.3.2).
// It needs the openid scope; email and email_verified come with the email scope.
func (h *Handler) userinfo(c *gin.Context) {
	token, ok := oauth.BearerToken(c.GetHeader("Authorization"))
	if !ok {
		// RFC 6750 §3.1: no error code when the request had no token at all.
		c.Header("WWW-Authenticate", oauth.BearerChallenge{}.String())
		writeError(c, oauth.ErrInvalidToken.WithDescription("Send the access token as Authorization: Bearer."), false)
		return
	}
	ctx, now := c.Request.Context(), h.now()
	claims, err := h.verifyAccessToken(ctx, token, now)
	if err != nil {
		writeError(c, err, false)
		return
	}
	client, err := h.clients.get(ctx, claims.ClientID)
	if err != nil {
		writeError(c, err, false)
		return
	}
	live, err := h.grants.isLive(ctx, claims.GrantID)
	if err != nil {
		writeError(c, err, false)
		return
	}
	if !live || !client.usable() {
		writeError(c, oauth.ErrInvalidToken.WithDescription("The access token was revoked."), false)
		return
	}
	scopes, _ := oauth.ParseScope(claims.Scope)
	if claims.GrantID == "" || !oauth.HasScope(scopes, "openid") {
		writeError(c, oauth.ErrInsufficientScope.WithDescription("The userinfo endpoint needs a token with the openid scope."), false)
		return
	}
	user, err := h.store.UserByID(ctx, claims.Subject)
	if errors.Is(err, store.ErrNotFound) || (err == nil && user.IsSuspended()) {
		writeError(c, oauth.ErrInvalidToken.WithDescription("The user of this token is not available."), false)
		return
	}
	if err != nil {
		writeError(c, err, false)
		return
	}
	info := oauth.UserInfo{Subject: user.PublicSubject(), IdP: user.Issuer}
	// An upstream identity has an email only when the upstream said it was verified.
	if oauth.HasScope(scopes, "email") && user.Email != "" {
		verified := true
		info.Email, info.EmailVerified = user.Email, &verified
	}
	writeJSON(c, info)
}
