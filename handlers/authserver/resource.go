package authserver

import (
	"context"
	"net/url"

	"github.com/authgpts/authgpts/oauth"
)

// binding is the app and resource an authorization request is for (RFC 8707). The
// resource is canonical and absolute: it is stored with the code and refresh token and
// becomes the aud of the access tokens.
type binding struct {
	app      *appEntry
	resource string
}

// Errors of resource binding: fixed strings, safe to send.
var (
	errResourceRequired = oauth.ErrInvalidRequest.WithDescription(
		"This client must send the resource parameter (RFC 8707): the URL of the MCP server it wants a token for.")
	errResourceRepeated = oauth.ErrInvalidTarget.WithDescription("Send one resource parameter.")
	errResourceUnknown  = oauth.ErrInvalidTarget.WithDescription("The resource is not an API published on this server.")
	errResourceOtherApp = oauth.ErrInvalidTarget.WithDescription("The resource belongs to another API than this client's.")
	errResourceNotMCP   = oauth.ErrInvalidTarget.WithDescription("This API is not open to MCP clients.")
	errResourceNarrow   = oauth.ErrInvalidTarget.WithDescription("The resource is not the one authorized, nor a part of it.")
)

// bindResource decides the app and resource of an authorization request from its
// resource parameter. A client with an app of its own may name its app's root or a
// sub-path, and gets the root when it names nothing (GPT actions send no resource). A
// client without an app (dynamic registration, metadata document) must name a resource
// of an app open to MCP clients: that is how it is bound to the app.
func (h *Handler) bindResource(ctx context.Context, client *clientEntry, q url.Values) (binding, error) {
	raw := q[oauth.ParamResource]
	if len(raw) > 1 {
		return binding{}, errResourceRepeated
	}
	if len(raw) == 0 || raw[0] == "" {
		if client.app == nil {
			return binding{}, errResourceRequired
		}
		return binding{app: client.app, resource: client.app.root(h.issuer)}, nil
	}
	canonical, err := oauth.CanonicalResource(raw[0])
	if err != nil {
		return binding{}, err
	}
	slug, _, ok := oauth.GatewayResource(h.issuer, canonical)
	if !ok {
		return binding{}, errResourceUnknown
	}
	if client.app != nil {
		if slug != client.app.oa.App.Slug {
			return binding{}, errResourceOtherApp
		}
		return binding{app: client.app, resource: canonical}, nil
	}
	app, err := h.apps.bySlug(ctx, slug)
	switch {
	case err != nil:
		return binding{}, err
	case !app.found || app.oa.App.IsSuspended():
		return binding{}, errResourceUnknown
	case !app.openTo(client.oc.Client):
		return binding{}, errResourceNotMCP
	}
	return binding{app: app, resource: canonical}, nil
}

// grantApp returns the app a code or refresh token of client was issued for (the
// grant's app), checked again now: an MCP client's app may have been suspended or closed
// to MCP clients since. Errors are invalid_grant.
func (h *Handler) grantApp(ctx context.Context, client *clientEntry, appID string) (*appEntry, error) {
	if client.app != nil {
		if client.app.oa.App.ID != appID {
			return nil, errGrantApp
		}
		return client.app, nil
	}
	app, err := h.apps.byID(ctx, appID)
	switch {
	case err != nil:
		return nil, err
	case !app.usable():
		return nil, oauth.ErrInvalidGrant.WithDescription("The API this grant is for is not available at the moment.")
	case !app.openTo(client.oc.Client):
		return nil, oauth.ErrInvalidGrant.WithDescription("The API this grant is for is no longer open to MCP clients.")
	}
	return app, nil
}

var errGrantApp = oauth.ErrInvalidGrant.WithDescription("The grant is for another API.")

// tokenResource is the aud of a token issued under a code or refresh token bound to
// bound ("" for credentials issued before resources were recorded: the app's root). A
// resource parameter must name the bound resource or narrow it (RFC 8707 §2.2), else
// invalid_target.
func (h *Handler) tokenResource(form url.Values, app *appEntry, bound string) (string, error) {
	if bound == "" {
		bound = app.root(h.issuer)
	}
	raw := form[oauth.ParamResource]
	if len(raw) > 1 {
		return "", errResourceRepeated
	}
	if len(raw) == 0 || raw[0] == "" {
		return bound, nil
	}
	canonical, err := oauth.CanonicalResource(raw[0])
	if err != nil {
		return "", err
	}
	if !oauth.ResourceCovers(bound, canonical) {
		return "", errResourceNarrow
	}
	return canonical, nil
}
