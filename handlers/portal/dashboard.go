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

func (h *Handler) dashboard(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	vm, err := h.dashboardVM(c.Request.Context(), u, view.NewAppFormVM{})
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Render(c, http.StatusOK, view.Dashboard(vm))
}

func (h *Handler) dashboardVM(ctx context.Context, u store.User, form view.NewAppFormVM) (view.DashboardVM, error) {
	apps, err := h.Store.AppsByOwner(ctx, u.ID)
	if err != nil {
		return view.DashboardVM{}, err
	}
	rows := make([]view.AppRow, 0, len(apps))
	for _, a := range apps {
		rows = append(rows, view.AppRow{
			Name: a.Name, Slug: a.Slug, URL: AppURL(a.Slug), ClientCount: a.ClientCount,
			CreatedAt: a.CreatedAt, Suspended: a.IsSuspended(), MCP: a.MCPEnabled,
		})
	}
	return view.DashboardVM{Chrome: chrome(u, "Dashboard"), Apps: rows, Form: form}, nil
}

// createApp creates the app, its built-in scopes and a first GPT-action client in one
// transaction, and answers with the setup page that shows the secret this one time.
func (h *Handler) createApp(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	if !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	form, errs := parseNewAppForm(c)
	if len(errs) > 0 {
		formVM := view.NewAppFormVM{Name: form.Name, CallbackURL: form.CallbackURL, Errors: errs}
		if web.IsPartial(c) {
			web.Render(c, unprocessable, view.NewAppForm(formVM))
			return
		}
		vm, err := h.dashboardVM(ctx, u, formVM)
		if err != nil {
			web.Fail(c, err)
			return
		}
		web.Render(c, unprocessable, view.Dashboard(vm))
		return
	}

	nc, secret := NewCredentials(h.Hasher, store.ClientKindGPT)
	nc.Name = "GPT action"
	nc.Origin = store.ClientOriginPortal
	if form.CallbackURL != "" {
		nc.RedirectURIs = []string{form.CallbackURL}
	}
	now := h.Now()
	var app store.App
	var client store.Client
	var err error
	// The slug is derived from the name and made unique; two developers creating
	// "Weather" at the same instant collide on the unique index, and a retry picks the
	// next free slug.
	for range 3 {
		err = h.Store.InTx(ctx, func(tx *store.Tx) error {
			var err error
			app, client, err = tx.CreateApp(ctx, store.NewApp{OwnerID: u.ID, Name: form.Name, Client: nc}, now)
			if err != nil {
				return err
			}
			return tx.Audit(ctx, h.auditEntry(c, u, now, "app.created", "app", app.ID, map[string]any{
				"slug": app.Slug, "name": app.Name, "client_id": client.ID, "redirect_uris": client.RedirectURIs,
			}))
		})
		if !errors.Is(err, store.ErrConflict) {
			break
		}
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	scopes, err := h.Store.ScopesByApp(ctx, app.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	prices, err := PriceList(ctx, h.Store, app)
	if err != nil {
		web.Fail(c, err)
		return
	}
	noStore(c)
	wholePage(c, http.StatusOK, view.SetupPage(view.SetupPageVM{
		Prices:       prices,
		Chrome:       chrome(u, app.Name+" is ready"),
		AppName:      app.Name,
		AppURL:       AppURL(app.Slug),
		ClientURL:    ClientURL(app.Slug, client.ID),
		Values:       h.setupValues("setup", app, client, scopes, secret, ""),
		CallbackURIs: client.RedirectURIs,
	}), "")
}
