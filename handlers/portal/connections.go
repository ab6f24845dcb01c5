package portal

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/connections"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// providerSlug is the provider's name in X-AuthGPTs-Connection-<name> and
// urn:authgpts:connection:<name> (the schema checks it too).
var providerSlug = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// maxConnections bounds the providers of one app.
const maxConnections = 20

func (h *Handler) connectionListVM(ctx context.Context, a store.App, form view.NewConnectionFormVM) (view.ConnectionListVM, error) {
	providers, err := h.Store.ConnectionProvidersByApp(ctx, a.ID)
	if err != nil {
		return view.ConnectionListVM{}, err
	}
	counts, err := h.Store.LinkedCounts(ctx, a.ID)
	if err != nil {
		return view.ConnectionListVM{}, err
	}
	vm := view.ConnectionListVM{AppURL: AppURL(a.Slug), CallbackURL: h.Connections.CallbackURL(), Form: form}
	for _, p := range connections.Presets {
		vm.Presets = append(vm.Presets, view.ConnectionPreset{Value: p.Name, Label: p.DisplayName})
	}
	vm.Presets = append(vm.Presets, view.ConnectionPreset{Value: "generic", Label: "Generic OAuth 2.0 / OpenID Connect"})
	for _, p := range providers {
		vm.Providers = append(vm.Providers, view.ConnectionRow{Provider: p.Provider, DisplayName: p.DisplayName, Preset: p.Preset,
			ClientID: p.ClientID, Scopes: p.Scopes, Required: p.Required, Delivery: p.Delivery,
			Configured: p.ClientID != "" && len(p.ClientSecretSealed) > 0, HeaderName: connections.HeaderPrefix + p.Provider,
			Linked: counts[p.ID]})
	}
	return vm, nil
}

func (h *Handler) connectionsAnswer(c *gin.Context, status int, u store.User, a store.App, form view.NewConnectionFormVM) {
	vm, err := h.connectionListVM(c.Request.Context(), a, form)
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.region(c, status, u, AppURL(a.Slug), view.ConnectionList(vm))
}

// parseConnectionForm reads "Add a connection" into a provider row (without its ID,
// app and sealed secret) and the clear secret.
func (h *Handler) parseConnectionForm(c *gin.Context) (store.ConnectionProvider, string, view.NewConnectionFormVM, view.Errors) {
	f := view.NewConnectionFormVM{
		Preset: c.PostForm("preset"), Provider: strings.TrimSpace(c.PostForm("provider")),
		DisplayName: strings.TrimSpace(c.PostForm("display_name")), AuthorizeURL: strings.TrimSpace(c.PostForm("authorize_url")),
		TokenURL: strings.TrimSpace(c.PostForm("token_url")), RevokeURL: strings.TrimSpace(c.PostForm("revoke_url")),
		UserinfoURL: strings.TrimSpace(c.PostForm("userinfo_url")), Scopes: strings.TrimSpace(c.PostForm("scopes")),
		ClientID: strings.TrimSpace(c.PostForm("client_id")), Required: c.PostForm("required") != "",
		Delivery: c.PostForm("delivery"), AuthStyle: c.PostForm("auth_style"), PKCE: c.PostForm("pkce") != "",
	}
	secret := strings.TrimSpace(c.PostForm("client_secret"))
	errs := view.Errors{}
	p := store.ConnectionProvider{Preset: f.Preset, Provider: f.Provider, ClientID: f.ClientID, Required: f.Required,
		Delivery: f.Delivery, Scopes: strings.Fields(f.Scopes)}
	if preset, ok := connections.PresetByName(f.Preset); ok {
		p.DisplayName, p.AuthorizeURL, p.TokenURL, p.RevokeURL, p.UserinfoURL = preset.DisplayName, preset.AuthorizeURL, preset.TokenURL, preset.RevokeURL, preset.UserinfoURL
		p.AuthStyle, p.PKCE = preset.AuthStyle, preset.PKCE
		if p.Provider == "" {
			p.Provider = preset.Name
		}
		if len(p.Scopes) == 0 {
			p.Scopes = preset.Scopes
		}
	} else if f.Preset == "generic" {
		p.DisplayName, p.AuthorizeURL, p.TokenURL, p.RevokeURL, p.UserinfoURL = f.DisplayName, f.AuthorizeURL, f.TokenURL, f.RevokeURL, f.UserinfoURL
		p.AuthStyle, p.PKCE = store.AuthStyleBody, f.PKCE
		if f.AuthStyle == store.AuthStyleHeader {
			p.AuthStyle = store.AuthStyleHeader
		}
		if p.DisplayName == "" {
			p.DisplayName = p.Provider
		}
		if len(p.DisplayName) > 80 {
			errs["display_name"] = "The display name is longer than 80 characters."
		}
		for field, v := range map[string]string{"authorize_url": p.AuthorizeURL, "token_url": p.TokenURL} {
			if v == "" {
				errs[field] = "Enter the provider's URL."
			} else if msg := CheckUpstreamURL(v, h.DevMode); msg != "" {
				errs[field] = msg
			}
		}
		for field, v := range map[string]string{"revoke_url": p.RevokeURL, "userinfo_url": p.UserinfoURL} {
			if msg := CheckUpstreamURL(v, h.DevMode); v != "" && msg != "" {
				errs[field] = msg
			}
		}
	} else {
		errs["preset"] = "Choose a provider."
	}
	if !providerSlug.MatchString(p.Provider) {
		errs["provider"] = "Use 1 to 32 lowercase letters, digits and dashes, starting with a letter or digit."
	}
	if p.Delivery != store.DeliveryHeader && p.Delivery != store.DeliveryExchange {
		p.Delivery = store.DeliveryHeader
	}
	if len(p.ClientID) > 500 {
		errs["client_id"] = "The client ID is longer than 500 characters."
	}
	if len(secret) > 1000 {
		errs["client_secret"] = "The client secret is longer than 1000 characters."
	}
	if (p.ClientID == "") != (secret == "") {
		errs["client_secret"] = "Enter both the client ID and the secret, or neither (users can connect once both are set)."
	}
	if len(p.Scopes) > 50 || len(f.Scopes) > 1000 {
		errs["scopes"] = "Ask for at most 50 scopes."
	}
	if p.Scopes == nil {
		p.Scopes = []string{}
	}
	return p, secret, f, errs
}

// createConnection adds a provider to the app; its secret is sealed before it is stored
// and is never shown again.
func (h *Handler) createConnection(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	p, secret, f, errs := h.parseConnectionForm(c)
	if len(errs) > 0 {
		f.Errors = errs
		h.connectionsAnswer(c, unprocessable, u, a, f)
		return
	}
	existing, err := h.Store.ConnectionProvidersByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if len(existing) >= maxConnections {
		f.Errors = view.Errors{"provider": "An app can declare at most 20 connections. Remove one first."}
		h.connectionsAnswer(c, unprocessable, u, a, f)
		return
	}
	now := h.Now()
	p.ID, p.AppID, p.CreatedAt = store.NewRowID(), a.ID, now
	p.ClientSecretSealed = []byte{}
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if secret != "" {
			var err error
			if p.KeyID, p.ClientSecretSealed, err = h.Connections.SealSecret(ctx, tx, p.ID, secret); err != nil {
				return err
			}
		} else if p.KeyID, err = tx.VaultKeyID(ctx); err != nil {
			return err
		}
		if err := tx.CreateConnectionProvider(ctx, u.ID, p); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "connection.created", "app", a.ID, map[string]any{
			"provider": p.Provider, "preset": p.Preset, "delivery": p.Delivery, "required": p.Required,
		}))
	})
	if errors.Is(err, store.ErrConflict) {
		f.Errors = view.Errors{"provider": "The app already has a connection named “" + p.Provider + "”."}
		h.connectionsAnswer(c, unprocessable, u, a, f)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.connectionsAnswer(c, http.StatusOK, u, a, view.NewConnectionFormVM{Notice: p.DisplayName + " added. Register the redirect URI above at the provider."})
}

// deleteConnection removes a provider and its users' linked accounts.
func (h *Handler) deleteConnection(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	provider := c.PostForm("provider")
	now := h.Now()
	var removed store.ConnectionProvider
	var tokens []store.PendingRevocation
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if removed, tokens, err = tx.DeleteConnectionProvider(ctx, u.ID, a.ID, provider); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "connection.deleted", "app", a.ID,
			map[string]any{"provider": provider, "linked_accounts": len(tokens)}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	// Its users' tokens are revoked at the provider now that nothing here holds them.
	h.Connections.RevokeRemoved(removed, tokens)
	h.connectionsAnswer(c, http.StatusOK, u, a, view.NewConnectionFormVM{})
}
