package portal

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// mcpClientLimit is how many connected MCP clients the app page lists (the store's
// LIMIT); at it, the page says the list is cut.
const mcpClientLimit = 500

// mcpPanelVM is the app page's MCP section: the MCP server URL and the MCP clients
// (without an app of their own) that hold live grants for the app.
func (h *Handler) mcpPanelVM(ctx context.Context, u store.User, a store.App) (view.MCPPanelVM, error) {
	clients, err := h.Store.MCPClientsOfApp(ctx, u.ID, a.ID)
	if err != nil {
		return view.MCPPanelVM{}, err
	}
	vm := view.MCPPanelVM{AppURL: AppURL(a.Slug), Enabled: a.MCPEnabled, MCPURL: URLsFor(h.BaseURL, a).MCPURL,
		Truncate: len(clients) >= mcpClientLimit}
	for _, cl := range clients {
		vm.Clients = append(vm.Clients, view.MCPClientRow{ID: cl.ID, Name: cl.Name, Origin: cl.Origin, Users: cl.Users,
			ConnectedAt: cl.ConnectedAt, LastUsedAt: cl.LastUsedAt})
	}
	return vm, nil
}

// revokeMCPClient disconnects an MCP client from the app: every live grant it holds for
// the app is revoked (store.RevokeGrant: its refresh tokens die and every instance drops
// its access tokens). The client itself stays: it may be connected to other apps.
func (h *Handler) revokeMCPClient(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	clientID := c.PostForm("client_id")
	var name string
	if cl, err := h.Store.ClientByID(ctx, clientID); err == nil && !cl.HasApp() {
		name = cl.Name
	} else {
		web.NotFound(c)
		return
	}
	now := h.Now()
	_, err := h.Store.RevokeClientGrantsOnApp(ctx, u.ID, a.ID, clientID, h.auditEntry(c, u, now, "", "", "", nil), now)
	if errors.Is(err, store.ErrNotFound) {
		web.NotFound(c)
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm, err := h.mcpPanelVM(ctx, u, a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm.Revoked = name
	h.region(c, http.StatusOK, u, AppURL(a.Slug), view.MCPPanel(vm, false))
}
