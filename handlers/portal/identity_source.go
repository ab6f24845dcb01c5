package portal

import (
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/upstream"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// PrefixOwnSecret marks an own-login signing secret.
const PrefixOwnSecret = "agown_"

func (h *Handler) identityVM(a store.App, src store.IdentitySource) view.IdentitySourceVM {
	return view.IdentitySourceVM{
		AppURL: AppURL(a.Slug), Kind: src.Kind, SavedKind: src.Kind, OIDCIssuer: src.Issuer, ClientID: src.ClientID,
		HasClientSecret: len(src.ClientSecretSealed) > 0, Scopes: src.Scopes, OwnLoginURL: src.OwnLoginURL,
		OwnPublicKey: src.OwnPublicKey, HasOwnSecret: len(src.OwnSecretSealed) > 0,
		CallbackURL: h.BaseURL + upstream.CallbackPath, OwnCallbackURL: h.BaseURL + upstream.OwnCallbackPath,
		OwnAudience: upstream.OwnIssuer(h.BaseURL, a.ID),
	}
}

// updateIdentitySource saves "How your users sign in". An OpenID Connect issuer is
// discovered now, through the SSRF guard; a failure is a 422 next to the field and
// nothing is saved. The client secret is sealed (AES-256-GCM, the app ID as associated
// data) and never rendered again; an own-login signing secret is generated the first
// time and shown once. Existing grants are untouched: they stay bound to the identity
// that consented.
func (h *Handler) updateIdentitySource(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	old, err := h.Store.IdentitySourceByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	form := store.IdentitySource{
		AppID:        a.ID,
		Kind:         c.PostForm("identity_source"),
		Issuer:       strings.TrimSpace(c.PostForm("oidc_issuer")),
		ClientID:     strings.TrimSpace(c.PostForm("upstream_client_id")),
		Scopes:       strings.Join(strings.Fields(c.PostForm("upstream_scopes")), " "),
		OwnLoginURL:  strings.TrimSpace(c.PostForm("own_login_url")),
		OwnPublicKey: strings.TrimSpace(c.PostForm("own_public_key")),
	}
	secret := c.PostForm("upstream_client_secret")
	vm := h.identityVM(a, old)
	vm.Kind, vm.OIDCIssuer, vm.ClientID, vm.Scopes, vm.OwnLoginURL, vm.OwnPublicKey =
		form.Kind, form.Issuer, form.ClientID, form.Scopes, form.OwnLoginURL, form.OwnPublicKey
	errs := view.Errors{}
	// A stored client secret belongs to the provider it was given for.
	keepSecret := len(old.ClientSecretSealed) > 0 && old.Kind == form.Kind && old.ClientID == form.ClientID
	switch form.Kind {
	case store.SourceEmail:
	case store.SourceOIDC, store.SourceGitHub:
		if form.Kind == store.SourceOIDC {
			if err := upstream.ValidIssuerURL(form.Issuer); err != nil {
				errs["oidc_issuer"] = err.Error()
			}
		}
		if form.ClientID == "" || len(form.ClientID) > 512 {
			errs["upstream_client_id"] = "Enter the client ID the provider gave you."
		}
		if len(secret) > 1024 {
			errs["upstream_client_secret"] = "That secret is too long."
		} else if secret == "" && !keepSecret {
			errs["upstream_client_secret"] = "Enter the client secret the provider gave you."
		}
		if _, err := oauth.ParseScope(form.Scopes); err != nil || len(form.Scopes) > 1024 {
			errs["upstream_scopes"] = "Scopes are space-separated tokens, like openid email."
		}
	case store.SourceOwn:
		if msg := h.ownLoginURLError(form.OwnLoginURL); msg != "" {
			errs["own_login_url"] = msg
		}
		if err := upstream.ValidPublicJWK(form.OwnPublicKey); err != nil {
			errs["own_public_key"] = err.Error()
		}
	default:
		errs["identity_source"] = "Choose how your users sign in."
	}
	// Discovery last, and only for an otherwise valid form: it is a network round trip.
	if form.Kind == store.SourceOIDC && len(errs) == 0 {
		if _, err := h.Sources.Discovery.Discover(ctx, form.Issuer); err != nil {
			errs["oidc_issuer"] = err.Error()
		}
	}
	if len(errs) > 0 {
		vm.Errors = errs
		h.region(c, unprocessable, u, vm.AppURL, view.IdentitySourceSection(vm))
		return
	}
	// Save only the chosen kind's fields and keep what the other kinds configured, so
	// switching back is one click and nothing typed into a hidden field is stored.
	if form.Kind != store.SourceOIDC {
		form.Issuer = old.Issuer
	}
	if form.Kind != store.SourceOIDC && form.Kind != store.SourceGitHub {
		form.ClientID, form.Scopes = old.ClientID, old.Scopes
		secret = ""
	}
	if form.Kind != store.SourceOwn {
		form.OwnLoginURL, form.OwnPublicKey = old.OwnLoginURL, old.OwnPublicKey
	}
	if secret != "" {
		if form.ClientSecretSealed, err = oauth.SealSecret(h.Sources.SealKey(), signin.SealAD(a.ID, "client_secret"), []byte(secret)); err != nil {
			web.Fail(c, err)
			return
		}
	}
	newOwnSecret := ""
	if form.Kind == store.SourceOwn && len(old.OwnSecretSealed) == 0 {
		newOwnSecret = oauth.NewToken(PrefixOwnSecret)
		if form.OwnSecretSealed, err = oauth.SealSecret(h.Sources.SealKey(), signin.SealAD(a.ID, "own_secret"), []byte(newOwnSecret)); err != nil {
			web.Fail(c, err)
			return
		}
	}
	now := h.Now()
	var saved store.IdentitySource
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if saved, err = tx.SaveIdentitySource(ctx, u.ID, form, now); err != nil {
			return err
		}
		// The audit entry names what changed, never a secret.
		return tx.Audit(ctx, h.auditEntry(c, u, now, "app.identity_source_updated", "app", a.ID, map[string]any{
			"kind": form.Kind, "previous_kind": old.Kind, "issuer": form.Issuer, "client_secret_changed": secret != "",
		}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	out := h.identityVM(a, saved)
	out.Saved, out.Switched, out.NewOwnSecret = true, saved.Kind != old.Kind, newOwnSecret
	if newOwnSecret != "" {
		noStore(c)
	}
	h.region(c, 200, u, out.AppURL, view.IdentitySourceSection(out))
}

// ownLoginURLError checks the own login page URL: https, or http on loopback in
// development mode (the browser goes there, the server never fetches it).
func (h *Handler) ownLoginURLError(raw string) string {
	pu, err := url.Parse(raw)
	if raw == "" || err != nil || pu.Host == "" || pu.User != nil || pu.Fragment != "" || len(raw) > 2048 {
		return "Enter the URL of your login page, like https://app.example.com/authgpts/login."
	}
	if pu.Scheme == "https" {
		return ""
	}
	if pu.Scheme == "http" && h.DevMode && oauth.IsLoopbackURI(raw) {
		return ""
	}
	return "The login page must be https (http only for localhost in development mode)."
}
