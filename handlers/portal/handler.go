package portal

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/connections"
	"github.com/authgpts/authgpts/handlers/signin"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/layout"
	view "github.com/authgpts/authgpts/views/portal"
)

// Handler serves the portal; every route requires a signed-in user.
type Handler struct {
	Store *store.Store
	// Hasher hashes client secrets exactly as the token endpoint does
	// (oauth.DerivedKeys.TokenHash).
	Hasher oauth.Hasher
	// BaseURL is the public base URL (AUTHGPTS_BASE_URL, no trailing slash): the
	// authorization, token and gateway URLs shown to developers start with it.
	BaseURL string
	// DevMode allows http:// upstreams on loopback hosts.
	DevMode bool
	Now     func() time.Time
	// Connections seals provider secrets and names the connect callback URL.
	Connections *connections.Service
	// Webhooks seals endpoints' secrets and checks their URLs.
	Webhooks Webhooks
	// Sources validates OpenID Connect issuers (discovery through the SSRF guard) and
	// holds the key that seals identity-source secrets.
	Sources *signin.Upstream
}

// Register mounts the portal routes on a signed-in browser group.
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/dashboard", h.dashboard)
	r.POST("/dashboard/apps", h.createApp)

	r.GET("/dashboard/apps/:slug", h.appPage)
	r.POST("/dashboard/apps/:slug/settings", h.updateAppSettings)
	r.POST("/dashboard/apps/:slug/delete", h.deleteApp)
	r.POST("/dashboard/apps/:slug/identity-source", h.updateIdentitySource)
	r.POST("/dashboard/apps/:slug/scopes", h.createScope)
	r.POST("/dashboard/apps/:slug/scopes/update", h.updateScope)
	r.POST("/dashboard/apps/:slug/scopes/delete", h.deleteScope)
	r.POST("/dashboard/apps/:slug/clients", h.createClient)
	r.POST("/dashboard/apps/:slug/mcp-clients/revoke", h.revokeMCPClient)
	r.POST("/dashboard/apps/:slug/prices", h.addRoutePrice)
	r.POST("/dashboard/apps/:slug/prices/delete", h.deleteRoutePrice)
	r.POST("/dashboard/apps/:slug/plan", h.updatePlan)
	r.POST("/dashboard/apps/:slug/keys", h.createAPIKey)
	r.POST("/dashboard/apps/:slug/keys/revoke", h.revokeAPIKey)
	r.POST("/dashboard/apps/:slug/connections", h.createConnection)
	r.POST("/dashboard/apps/:slug/connections/delete", h.deleteConnection)
	r.POST("/dashboard/apps/:slug/webhooks", h.createWebhookEndpoint)
	r.POST("/dashboard/apps/:slug/webhooks/threshold", h.updateCreditsLowThreshold)
	r.GET("/dashboard/apps/:slug/webhooks/:endpoint", h.webhookDeliveriesPage)
	r.POST("/dashboard/apps/:slug/webhooks/:endpoint/test", h.sendTestWebhook)
	r.POST("/dashboard/apps/:slug/webhooks/:endpoint/rotate", h.rotateWebhookSecret)
	r.POST("/dashboard/apps/:slug/webhooks/:endpoint/enable", h.enableWebhookEndpoint)
	r.POST("/dashboard/apps/:slug/webhooks/:endpoint/delete", h.deleteWebhookEndpoint)
	r.POST("/dashboard/apps/:slug/webhooks/:endpoint/deliveries/:delivery/resend", h.resendWebhook)

	r.GET("/dashboard/apps/:slug/clients/:client", h.clientPage)
	r.POST("/dashboard/apps/:slug/clients/:client/name", h.renameClient)
	r.POST("/dashboard/apps/:slug/clients/:client/redirect-uris", h.addRedirectURI)
	r.POST("/dashboard/apps/:slug/clients/:client/redirect-uris/presets", h.addKnownCallbacks)
	r.POST("/dashboard/apps/:slug/clients/:client/redirect-uris/delete", h.removeRedirectURI)
	r.POST("/dashboard/apps/:slug/clients/:client/secret", h.rotateSecret)
	r.POST("/dashboard/apps/:slug/clients/:client/delete", h.deleteClient)
}

// AppURL is the portal page of the app with that slug.
func AppURL(slug string) string { return "/dashboard/apps/" + slug }

// ClientURL is the portal page of a client.
func ClientURL(slug, clientID string) string {
	return AppURL(slug) + "/clients/" + ClientRef(clientID)
}

// loadApp returns the signed-in developer's app named by :slug; anything else has
// been answered (404 for an app that is not theirs).
func (h *Handler) loadApp(c *gin.Context) (store.User, store.App, bool) {
	u, _ := web.CurrentUser(c)
	slug := c.Param("slug")
	if !store.ValidSlug(slug) {
		web.NotFound(c)
		return u, store.App{}, false
	}
	a, err := h.Store.AppBySlugForOwner(c.Request.Context(), u.ID, slug)
	if err != nil {
		web.Fail(c, err)
		return u, store.App{}, false
	}
	return u, a, true
}

// loadClient is loadApp plus the client named by :client, which must belong to it.
func (h *Handler) loadClient(c *gin.Context) (store.User, store.App, store.Client, bool) {
	u, a, ok := h.loadApp(c)
	if !ok {
		return u, a, store.Client{}, false
	}
	id, ok := parseClientRef(c.Param("client"))
	if !ok {
		web.NotFound(c)
		return u, a, store.Client{}, false
	}
	cl, err := h.Store.ClientForApp(c.Request.Context(), u.ID, a.ID, id)
	if err != nil {
		web.Fail(c, err)
		return u, a, store.Client{}, false
	}
	return u, a, cl, true
}

// auditEntry describes a change by the signed-in developer; details never hold a secret.
func (h *Handler) auditEntry(c *gin.Context, u store.User, at time.Time, action, targetType, targetID string, details map[string]any) store.AuditEntry {
	var raw json.RawMessage
	if details != nil {
		raw, _ = json.Marshal(details)
	}
	return store.AuditEntry{
		At: at, ActorID: u.ID, ActorEmail: u.Email, Action: action,
		TargetType: targetType, TargetID: targetID, IP: c.ClientIP(), Details: raw,
	}
}

// region answers an htmx request with the region (plus out-of-band regions), and a
// form posted without htmx with the region inside the page chrome and a link back.
func (h *Handler) region(c *gin.Context, status int, u store.User, backURL string, main templ.Component, oob ...templ.Component) {
	c.Header("Vary", "HX-Request")
	if web.IsPartial(c) {
		web.Render(c, status, templ.Join(append([]templ.Component{main}, oob...)...))
		return
	}
	web.Render(c, status, view.Standalone(chrome(u, "Dashboard"), backURL, "Back", main))
}

// wholePage answers an htmx request with a full page that replaces the body (htmx
// takes the <body> of a full document), optionally pushing its URL; plain requests get
// the page as usual.
func wholePage(c *gin.Context, status int, page templ.Component, pushURL string) {
	if web.IsHTMX(c) {
		c.Header("HX-Retarget", "body")
		c.Header("HX-Reswap", "innerHTML show:window:top")
		if pushURL != "" {
			c.Header("HX-Push-Url", pushURL)
		}
	}
	web.Render(c, status, page)
}

// noStore keeps a response that shows a secret out of every cache.
func noStore(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.Header("Pragma", "no-cache")
}

func chrome(u store.User, title string) layout.Chrome {
	return layout.Chrome{Title: title, UserEmail: u.DisplayName(), IsAdmin: u.IsAdmin, Active: "dashboard"}
}

// unprocessable is the status of a validation error that re-renders its form.
const unprocessable = http.StatusUnprocessableEntity
