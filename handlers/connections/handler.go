package connections

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	views "github.com/authgpts/authgpts/views/connections"
)

// Handler serves the connect flow and the end user's disconnect.
type Handler struct {
	Store   *store.Store
	Service *Service
	Now     func() time.Time
	// Managed returns the identities the signed-in user manages on /account (their own
	// and, from a trusted identity, the ones linked with it: handlers/account).
	Managed func(c *gin.Context) ([]string, error)
}

// Register mounts the routes on the signed-in browser group.
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/connections/:provider/start", h.start)
	r.GET("/connections/callback", h.callback)
	r.POST("/account/linked/:id/disconnect", h.disconnect)
}

// Fixed messages of the connect flow: none quotes what the provider or caller sent.
const (
	msgBadState   = "This connection request is invalid or has expired."
	hintBadState  = "Start connecting again from your account page; a request works once, for 10 minutes, in the browser that started it."
	msgUnknown    = "There is no such connection."
	hintUnknown   = "Check the link; the app may have removed this provider."
	msgNotReady   = "This provider is not configured yet."
	hintNotReady  = "The app's developer has not entered the client ID and secret registered at the provider."
	msgConflict   = "That account is already connected to another user of this app."
	hintConflict  = "Sign in to the provider with another account, or disconnect it from the other user first."
	msgRefused    = "The provider did not connect your account."
	hintRefused   = "You may have cancelled at the provider; try again, and allow access there."
	msgExchange   = "The provider did not accept the authorization."
	hintExchange  = "Try again; if it keeps failing, the app's developer should check the client ID and secret."
	modePopup     = "popup"
	modeRedirect  = "redirect"
	defaultReturn = "/account"
)

// popupOpenerPolicy lets the connect popup keep its opener across the provider's pages:
// the pages that open it allow popups (same-origin-allow-popups), and the flow's own
// pages do not sever the link (the default same-origin would), so the last page can
// post its result to the opener (at our origin only) and close.
const popupOpenerPolicy = "unsafe-none"

// start begins the outbound authorization request (GET /connections/<provider>/start?app=<slug>).
func (h *Handler) start(c *gin.Context) {
	c.Header("Cross-Origin-Opener-Policy", popupOpenerPolicy)
	u, _ := web.CurrentUser(c)
	p, err := h.Store.ConnectionProviderByAppSlug(c.Request.Context(), c.Query("app"), c.Param("provider"))
	if errors.Is(err, store.ErrNotFound) {
		web.Error(c, http.StatusNotFound, msgUnknown, hintUnknown)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	if p.ClientID == "" || len(p.ClientSecretSealed) == 0 {
		web.Error(c, http.StatusNotImplemented, msgNotReady, hintNotReady)
		return
	}
	sessionHash, ok := web.SessionHash(c)
	if !ok {
		web.Error(c, http.StatusUnauthorized, "Your session has ended.", "Sign in again, then retry.")
		return
	}
	mode := modeRedirect
	if c.Query("mode") == modePopup {
		mode = modePopup
	}
	state, verifier := randomToken(), ""
	if p.PKCE {
		verifier = randomToken() + randomToken() // 86 characters: RFC 7636 §4.1 allows 43-128
	}
	now := h.Now()
	st := store.ConnectionState{
		StateHash: h.Service.cfg.Hasher.Hash(state), ProviderID: p.ID, UserID: u.ID, SessionHash: sessionHash,
		CodeVerifier: verifier, Mode: mode, ReturnTo: web.SafeReturnTo(c.Query("return_to"), defaultReturn),
		ExpiresAt: now.Add(store.ConnectionStateLifetime), CreatedAt: now,
	}
	authURL, err := h.Service.AuthCodeURL(p, state, verifier)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if err := h.Store.CreateConnectionState(c.Request.Context(), st); err != nil {
		web.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	web.Redirect(c, authURL)
}

// callback ends the flow (GET /connections/callback?state=…&code=… or &error=…).
func (h *Handler) callback(c *gin.Context) {
	c.Header("Cross-Origin-Opener-Policy", popupOpenerPolicy)
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer") // the URL holds the code
	u, _ := web.CurrentUser(c)
	ctx := c.Request.Context()
	state := c.Query("state")
	if state == "" || len(state) > 256 {
		web.Error(c, http.StatusBadRequest, msgBadState, hintBadState)
		return
	}
	st, err := h.Store.TakeConnectionState(ctx, h.Service.cfg.Hasher.Hash(state))
	if errors.Is(err, store.ErrNotFound) {
		web.Error(c, http.StatusBadRequest, msgBadState, hintBadState)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	sessionHash, _ := web.SessionHash(c)
	// The state is bound to the user and the browser session that started the flow.
	bound := subtle.ConstantTimeCompare(st.SessionHash, sessionHash) == 1
	bound = subtle.ConstantTimeCompare([]byte(st.UserID), []byte(u.ID)) == 1 && bound
	if !bound || !h.Now().Before(st.ExpiresAt) {
		web.Error(c, http.StatusBadRequest, msgBadState, hintBadState)
		return
	}
	p, err := h.Store.ConnectionProviderByID(ctx, st.ProviderID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	result := views.ResultVM{Provider: p.Provider, Name: p.DisplayName, Origin: origin(h.Service.cfg.BaseURL), ReturnTo: st.ReturnTo}
	fail := func(status int, msg, hint string) {
		if st.Mode == modePopup {
			result.Message, result.Hint = msg, hint
			web.Render(c, status, views.Result(result))
			return
		}
		web.Error(c, status, msg, hint)
	}
	if c.Query("error") != "" || c.Query("code") == "" {
		// RFC 6749 §4.1.2.1: the provider's error code is not echoed (it is the
		// provider's text on our page).
		fail(http.StatusBadRequest, msgRefused, hintRefused)
		return
	}
	_, err = h.Service.Link(ctx, p, u.ID, c.Query("code"), st.CodeVerifier)
	switch {
	case errors.Is(err, store.ErrConflict):
		fail(http.StatusConflict, msgConflict, hintConflict)
		return
	case errors.Is(err, ErrNotConfigure):
		fail(http.StatusNotImplemented, msgNotReady, hintNotReady)
		return
	case err != nil:
		web.Log(c).Warn("connections: link failed", "provider", p.Provider, "err", err)
		fail(http.StatusBadGateway, msgExchange, hintExchange)
		return
	}
	if st.Mode == modePopup {
		result.OK = true
		web.Render(c, http.StatusOK, views.Result(result))
		return
	}
	web.Redirect(c, st.ReturnTo)
}

// disconnect deletes a linked account of any of the user's linked sign-in identities
// and revokes it at the provider.
func (h *Handler) disconnect(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	ids := []string{u.ID}
	if h.Managed != nil {
		var err error
		if ids, err = h.Managed(c); err != nil {
			web.Fail(c, err)
			return
		}
	}
	if err := h.Service.Disconnect(c.Request.Context(), ids, c.Param("id")); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/account")
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func origin(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
