// Package portal is the developer portal: the dashboard with the developer's apps.
//
//	GET /dashboard   the developer's apps
package portal

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/layout"
	"github.com/authgpts/authgpts/views/portal"
)

// Handler serves the portal pages; every route requires a signed-in user.
type Handler struct {
	Store *store.Store
	Now   func() time.Time
}

// Register mounts the portal routes on a signed-in browser group.
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/dashboard", h.dashboard)
}

func (h *Handler) dashboard(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	web.Render(c, http.StatusOK, portal.Dashboard(portal.DashboardVM{Chrome: chrome(u, "Dashboard", "dashboard")}))
}

func chrome(u store.User, title, active string) layout.Chrome {
	return layout.Chrome{Title: title, UserEmail: u.Email, IsAdmin: u.IsAdmin, Active: active}
}
