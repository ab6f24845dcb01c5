// Package account is the end user's own page.
//
//	GET /account   who is signed in
package account

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/account"
	"github.com/authgpts/authgpts/views/layout"
)

// Handler serves /account; every route requires a signed-in user.
type Handler struct {
	Store *store.Store
}

// Register mounts the account routes on a signed-in browser group.
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/account", h.page)
}

func (h *Handler) page(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	web.Render(c, http.StatusOK, account.Page(account.PageVM{
		Chrome: layout.Chrome{Title: "Account", UserEmail: u.Email, IsAdmin: u.IsAdmin, Active: "account"},
		Email:  u.Email,
	}))
}
