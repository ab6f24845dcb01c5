package gateway

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// resourceMetadataDoc is the RFC 9728 §2 protected resource metadata of an app's
// gateway resource.
type resourceMetadataDoc struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name"`
}

// resourceMetadata serves GET /.well-known/oauth-protected-resource/gw/:slug[/*path]:
// the metadata of the resource <base>/gw/<slug>[/path]. RFC 9728 §3.3: "resource" is
// exactly the URL the well-known URL was formed from, so a client that found it through a
// 401 can check it. CORS-enabled and cookie-free, like every .well-known document.
func (g *Gateway) resourceMetadata(c *gin.Context) {
	w := c.Writer
	slug, sub := c.Param("slug"), c.Param("path")
	if sub == "/" {
		sub = ""
	}
	app, err := g.apps.get(c.Request.Context(), slug, g.cfg.Now())
	if errors.Is(err, store.ErrNotFound) || (err == nil && app.IsSuspended()) {
		fail(w, http.StatusNotFound, errorBody{Error: "not_found", ErrorDescription: "No API is published at this address."})
		return
	}
	if err != nil {
		web.Log(c).Error("gateway: load app for metadata", "slug", slug, "err", err)
		unavailable(w)
		return
	}
	scopes := app.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	web.AllowAnyOrigin(w.Header())
	oauth.WriteJSON(w, http.StatusOK, resourceMetadataDoc{
		Resource:               g.resource(app.Slug, sub),
		AuthorizationServers:   []string{g.issuer},
		ScopesSupported:        scopes,
		BearerMethodsSupported: []string{"header"}, // RFC 6750 §2.1 only
		ResourceName:           app.Name,
	})
}

// rootResourceMetadata serves GET /.well-known/oauth-protected-resource: the metadata of
// the resource the bare host names (RFC 9728 §3.1: no path component), i.e. the
// gateway as a whole. It exists for clients that probe the root well-known URL (the MCP
// authorization spec's fallback after the path-suffixed one) so that they still find
// the authorization server. It names no app: a token is always asked for one of the
// apps' resources (<base>/gw/<slug>[/mcp]), which the 401 of each API names exactly;
// asking for the bare base URL as a resource is invalid_target.
func (g *Gateway) rootResourceMetadata(c *gin.Context) {
	web.AllowAnyOrigin(c.Writer.Header())
	oauth.WriteJSON(c.Writer, http.StatusOK, resourceMetadataDoc{
		Resource:               g.issuer,
		AuthorizationServers:   []string{g.issuer},
		ScopesSupported:        oauth.BuiltinScopes,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "AuthGPTs gateway",
	})
}
