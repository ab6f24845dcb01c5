package authserver

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	views "github.com/authgpts/authgpts/views/oauth"
)

// Messages of the authorization error page: fixed strings, never request data.
const (
	msgBadRequest     = "The sign-in link is incomplete or malformed."
	msgUnknownClient  = "The app that sent you here is not registered with this service."
	msgBadRedirect    = "The app that sent you here asked to return to an address it has not registered."
	msgSuspended      = "The app that sent you here is not available at the moment."
	msgConsentExpired = "This page expired, or it was opened for another account."
	msgSessionEnded   = "You were signed out before you answered."
	msgBadDocument    = "The app that sent you here describes itself with a document that could not be fetched or is not valid."
	msgConnectFirst   = "This app needs you to connect another account before you allow it. Go back and connect it first."
)

// authorize is the authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2).
func (h *Handler) authorize(c *gin.Context) {
	q := c.Request.URL.Query()
	ctx := c.Request.Context()

	// 1. Client and redirect URI first. Until both are verified every error is a page:
	// redirecting to an unverified URI would make us an open redirector (RFC 6749
	// §4.1.2.1, RFC 9700 §4.11).
	clientID, requested, err := oauth.ParseAuthorizeTarget(q)
	if err != nil {
		h.errorPage(c, http.StatusBadRequest, msgBadRequest)
		return
	}
	client, err := h.lookupClient(ctx, clientID)
	var de *documentError
	if errors.As(err, &de) {
		h.errorPage(c, http.StatusBadRequest, msgBadDocument)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	redirectURI, ok := "", false
	if client.found {
		redirectURI, ok = oauth.ResolveRedirectURI(client.oc.Client.RedirectURIs, requested)
	}
	if !ok { // maybe registered a moment ago: look once more
		if fresh, err := h.clients.reloadAfterMiss(ctx, clientID, client); err != nil {
			web.Fail(c, err)
			return
		} else if fresh != nil {
			client = fresh
			if client.found {
				redirectURI, ok = oauth.ResolveRedirectURI(client.oc.Client.RedirectURIs, requested)
			}
		}
	}
	switch {
	case !client.found:
		h.errorPage(c, http.StatusBadRequest, msgUnknownClient)
		return
	case !ok:
		// AI-CLIENTS.md A5: say so in the log, so the developer can find it.
		web.Log(c).Warn("authorize: redirect_uri is not registered for client", "client_id", clientID, "redirect_uri", requested) // the instance's logger caps it (web.CapLog)
		h.errorPage(c, http.StatusBadRequest, msgBadRedirect)
		return
	case !client.usable():
		h.errorPage(c, http.StatusForbidden, msgSuspended)
		return
	}

	// 2. Everything else is answered at the redirect URI, with state and iss.
	if client.oc.Client.Kind == store.ClientKindService {
		h.redirectError(c, redirectURI, oauth.ErrUnauthorizedClient.WithDescription("Service clients use the client_credentials grant."), q.Get("state"))
		return
	}
	// RFC 8707: the resource decides the app (and, for MCP clients, binds them to it).
	b, err := h.bindResource(ctx, client, q)
	if err != nil {
		h.redirectError(c, redirectURI, err, oauth.StateParam(q))
		return
	}
	req, err := oauth.ParseAuthorizationRequest(q, clientID, redirectURI, client.policy(b.app))
	if errors.Is(err, oauth.ErrInvalidScope) { // a scope the developer just added?
		if fresh, rerr := h.clients.reloadAfterMiss(ctx, clientID, client); rerr == nil && fresh != nil && fresh.usable() {
			client = fresh
			if b2, berr := h.bindResource(ctx, client, q); berr == nil {
				b = b2
			}
			req, err = oauth.ParseAuthorizationRequest(q, clientID, redirectURI, client.policy(b.app))
		}
	}
	if err != nil {
		h.redirectError(c, redirectURI, err, req.State)
		return
	}

	// 3. The user: sign in first, or again for prompt=login and max_age.
	// The app's identity source decides who may be signed in: an email-code account, or
	// an identity from the app's upstream provider (DESIGN.md, identity sources). Anyone
	// else signs in through that source first.
	now := h.now()
	src := b.app.oa.Source
	user, signedIn := web.CurrentUser(c)
	otherIdentity := signedIn && user.Issuer != signin.RequiredIssuer(h.issuer, src)
	if !signedIn || otherIdentity {
		if req.Prompt.None {
			h.redirectError(c, redirectURI, oauth.ErrLoginRequired.WithDescription("The user is not signed in."), req.State)
			return
		}
		h.signInFirst(c, src, c.Request.URL.RequestURI(), otherIdentity)
		return
	}
	authTime := authTimeOf(c, user)
	if req.NeedsLogin(authTime, now) {
		if req.Prompt.None {
			h.redirectError(c, redirectURI, oauth.ErrLoginRequired.WithDescription("The user must sign in again."), req.State)
			return
		}
		back := oauth.PathAuthorize + "?" + oauth.ReauthenticationQuery(q, now).Encode()
		h.signInFirst(c, src, back, true) // prompt=login / max_age: the provider is asked to sign in again
		return
	}

	// 4. Remembered consent: one INSERT that succeeds only when the user's grant already
	// covers every requested scope.
	code := oauth.NewToken(oauth.PrefixCode)
	nc := h.newCode(code, req, b, user.ID, authTime, now)
	if !req.Prompt.Consent {
		_, err := h.store.CreateCodeUnderGrant(ctx, nc, now)
		switch {
		case err == nil:
			h.redirectCode(c, redirectURI, code, req.State)
			return
		case !errors.Is(err, store.ErrNotFound):
			h.redirectError(c, redirectURI, err, req.State)
			return
		}
	}
	if req.Prompt.None {
		h.redirectError(c, redirectURI, oauth.ErrConsentRequired.WithDescription("The user has not consented to these scopes."), req.State)
		return
	}

	// 5. Ask.
	ticket, err := h.tickets.Sign(oauth.ConsentTicket{
		UserID: user.ID, ClientID: clientID, RedirectURI: redirectURI, RedirectURIGiven: req.RedirectURIGiven,
		Scopes: req.Scopes, State: req.State, Nonce: req.Nonce,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		AppID: b.app.oa.App.ID, Resource: b.resource,
		AuthTime: authTime.Unix(), Expiry: now.Add(oauth.ConsentTicketTTL).Unix(),
	})
	if err != nil {
		h.redirectError(c, redirectURI, err, req.State)
		return
	}
	vm := consentVM(client, b, redirectURI)
	vm.UserEmail, vm.Ticket = user.DisplayName(), ticket
	if vm.Prices, err = h.priceList(ctx, b.app.oa.App); err != nil {
		web.Fail(c, err)
		return
	}
	vm.SwitchURL = "/login?reauth=1&return_to=" + url.QueryEscape(c.Request.URL.RequestURI())
	if src.Kind != store.SourceEmail && src.Kind != "" { // "Not you?" signs in again at the app's provider
		vm.SwitchURL = signin.PathUpstreamStart + "?prompt=login&app=" + url.QueryEscape(src.AppID) + "&return_to=" + url.QueryEscape(c.Request.URL.RequestURI())
	}
	missing, err := h.store.MissingRequiredConnections(ctx, b.app.oa.App.ID, user.ID)
	if err != nil {
		h.redirectError(c, redirectURI, err, req.State)
		return
	}
	for _, p := range missing {
		vm.Connect = append(vm.Connect, views.ConnectVM{Name: p.DisplayName, URL: "/connections/" + p.Provider + "/start?" +
			url.Values{"app": {b.app.oa.App.Slug}, "return_to": {c.Request.URL.RequestURI()}}.Encode()})
	}
	for _, s := range req.Scopes {
		sv := views.ScopeVM{Name: s, Required: oauth.IsRequiredScope(s)}
		for _, as := range b.app.oa.Scopes {
			if as.Name == s {
				sv.Description = as.Description
			}
		}
		vm.Scopes = append(vm.Scopes, sv)
	}
	c.Header("Cache-Control", "no-store")
	if len(vm.Connect) > 0 {
		// Connect opens a popup that must keep this page as its opener (handlers/connections).
		c.Header("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
	}
	web.Render(c, http.StatusOK, views.ConsentPage(vm))
}

// consent handles the consent form. The signed ticket carries the request; it must be
// unexpired and issued to the user who is signed in now. Allow records the grant and
// issues a code; Deny answers access_denied. Both redirect with 303 and iss.
func (h *Handler) consent(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	user, ok := web.CurrentUser(c)
	if !ok {
		h.errorPage(c, http.StatusUnauthorized, msgSessionEnded)
		return
	}
	now := h.now()
	t, err := h.tickets.Open(c.PostForm("ticket"), now)
	if err != nil || t.UserID != user.ID {
		h.errorPage(c, http.StatusBadRequest, msgConsentExpired)
		return
	}
	ctx := c.Request.Context()
	client, err := h.clients.get(ctx, t.ClientID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	switch {
	case !client.found:
		h.errorPage(c, http.StatusBadRequest, msgUnknownClient)
		return
	case !oauth.MatchRedirectURI(client.oc.Client.RedirectURIs, t.RedirectURI):
		h.errorPage(c, http.StatusBadRequest, msgBadRedirect) // unregistered since the page was shown
		return
	case !client.usable():
		h.errorPage(c, http.StatusForbidden, msgSuspended)
		return
	}
	app, err := h.ticketApp(ctx, client, t)
	if err != nil {
		h.redirectError(c, t.RedirectURI, err, t.State)
		return
	}

	audit := store.AuditEntry{At: now, ActorID: user.ID, ActorEmail: user.Email, TargetType: "client",
		TargetID: client.oc.Client.ID, IP: c.ClientIP()}
	switch c.PostForm("decision") {
	case "deny":
		audit.Action = "oauth.consent_denied"
		if err := h.store.Audit(ctx, audit); err != nil {
			web.Log(c).Error("audit consent denial", "err", err)
		}
		h.redirectError(c, t.RedirectURI, oauth.ErrAccessDenied.WithDescription("The user denied access."), t.State)
		return
	case "allow":
	default:
		h.errorPage(c, http.StatusBadRequest, msgBadRequest)
		return
	}

	// A connection the app requires must be linked before Allow (the page disables it).
	if missing, err := h.store.MissingRequiredConnections(ctx, app.oa.App.ID, user.ID); err != nil {
		h.redirectError(c, t.RedirectURI, err, t.State)
		return
	} else if len(missing) > 0 {
		h.errorPage(c, http.StatusBadRequest, msgConnectFirst)
		return
	}
	approved := oauth.ApprovedScopes(t.Scopes, c.PostFormArray("scope"))
	code := oauth.NewToken(oauth.PrefixCode)
	req := oauth.AuthorizationRequest{
		RedirectURI: t.RedirectURI, RedirectURIGiven: t.RedirectURIGiven, Scopes: approved, Nonce: t.Nonce,
		CodeChallenge: t.CodeChallenge, CodeChallengeMethod: t.CodeChallengeMethod, ClientID: t.ClientID,
	}
	nc := h.newCode(code, req, binding{app: app, resource: t.Resource}, user.ID, time.Unix(t.AuthTime, 0).UTC(), now)
	err = h.store.InTx(ctx, func(tx *store.Tx) error {
		var held []string
		if g, err := tx.ActiveGrant(ctx, user.ID, client.oc.Client.ID, app.oa.App.ID); err == nil {
			held = g.Scopes
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		g, err := tx.UpsertGrant(ctx, store.NewGrant{UserID: user.ID, ClientID: client.oc.Client.ID, AppID: app.oa.App.ID,
			Scopes: oauth.MergeConsent(held, t.Scopes, approved)}, now)
		if err != nil {
			return err
		}
		nc.GrantID = g.ID
		if err := tx.CreateCode(ctx, nc, now); err != nil {
			return err
		}
		audit.Action = "oauth.consent_granted"
		audit.Details = mustJSON(map[string]any{"grant_id": g.ID, "scopes": approved, "app_id": app.oa.App.ID, "resource": t.Resource})
		return tx.Audit(ctx, audit)
	})
	if err != nil {
		h.redirectError(c, t.RedirectURI, err, t.State)
		return
	}
	h.redirectCode(c, t.RedirectURI, code, t.State)
}

// signInFirst sends the browser to sign in through the app's identity source and come
// back to returnTo: the email-code page, or the upstream provider (through
// /login/upstream, which creates the state). again asks the email page to show its form
// although someone is signed in (another identity, or prompt=login / max_age).
func (h *Handler) signInFirst(c *gin.Context, src store.IdentitySource, returnTo string, again bool) {
	if src.Kind == store.SourceEmail || src.Kind == "" {
		loc := "/login?return_to=" + url.QueryEscape(returnTo)
		if again {
			loc = "/login?reauth=1&return_to=" + url.QueryEscape(returnTo)
		}
		web.Redirect(c, loc)
		return
	}
	loc := signin.PathUpstreamStart + "?app=" + url.QueryEscape(src.AppID) + "&return_to=" + url.QueryEscape(returnTo)
	if again {
		loc += "&prompt=login"
	}
	web.Redirect(c, loc)
}

// newCode binds a code to everything the token request will be checked against.
func (h *Handler) newCode(code string, req oauth.AuthorizationRequest, b binding, userID string, authTime, now time.Time) store.NewCode {
	return store.NewCode{
		Hash:                h.hasher.Hash(code),
		AppID:               b.app.oa.App.ID,
		Resource:            b.resource,
		ClientID:            req.ClientID,
		UserID:              userID,
		RedirectURI:         req.RedirectURI,
		RedirectURIGiven:    req.RedirectURIGiven,
		Scopes:              req.Scopes,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		Nonce:               req.Nonce,
		AuthTime:            authTime,
		ExpiresAt:           now.Add(oauth.CodeTTL),
	}
}

// ticketApp is the app a consent ticket was issued for, checked again: the client's own
// app, or for an MCP client the app it was bound to, still available and open to it.
func (h *Handler) ticketApp(ctx context.Context, client *clientEntry, t oauth.ConsentTicket) (*appEntry, error) {
	if client.app != nil {
		if t.AppID != client.app.oa.App.ID {
			return nil, errResourceOtherApp
		}
		return client.app, nil
	}
	app, err := h.apps.byID(ctx, t.AppID)
	switch {
	case err != nil:
		return nil, err
	case !app.usable():
		return nil, errResourceUnknown
	case !app.openTo(client.oc.Client):
		return nil, errResourceNotMCP
	}
	return app, nil
}

// redirectCode answers with the code (303, RFC 9700 §4.12), state and iss (RFC 9207).
func (h *Handler) redirectCode(c *gin.Context, redirectURI, code, state string) {
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, oauth.AuthorizationCodeRedirect(redirectURI, code, state, h.issuer))
	c.Abort()
}

// redirectError answers an error at the verified redirect URI with state and iss. An
// unexpected error is logged and sent as server_error.
func (h *Handler) redirectError(c *gin.Context, redirectURI string, err error, state string) {
	err = protocolError(c, err)
	var oe oauth.Error
	if !errors.As(err, &oe) {
		web.Log(c).Error("authorize failed", "err", err)
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, oauth.AuthorizationErrorRedirect(redirectURI, err, state, h.issuer))
	c.Abort()
}

// errorPage renders the authorization error page: used exactly when redirecting is not
// safe (unknown client, unregistered redirect URI) or not possible.
func (h *Handler) errorPage(c *gin.Context, status int, message string) {
	c.Header("Cache-Control", "no-store")
	web.Render(c, status, views.AuthorizeErrorPage(views.AuthorizeErrorVM{
		Status: status, Title: "This sign-in request can't continue", Message: message, RequestID: web.RequestID(c),
	}))
}

// authTimeOf is when the user signed in on this browser (OpenID Connect auth_time): the
// start of the session, so a sign-in on another device cannot satisfy max_age here.
func authTimeOf(c *gin.Context, u store.User) time.Time {
	if started, ok := web.SessionStarted(c); ok {
		return started.UTC()
	}
	if u.LastLoginAt != nil {
		return u.LastLoginAt.UTC()
	}
	return u.CreatedAt.UTC()
}

// redirectHost is the host (with a non-default port) the user is sent back to, shown on
// the consent page (MCP authorization spec: show the redirect URI's host).
func redirectHost(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil {
		return redirectURI
	}
	return u.Host
}
