package portal

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

func (h *Handler) appPage(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok {
		return
	}
	vm, err := h.appPageVM(c.Request.Context(), u, a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Render(c, http.StatusOK, view.AppPage(vm))
}

// updateAppSettings saves the settings form. A taken slug is a field error (422), not
// a 500. A new slug moves the page, so the whole page is answered at its new URL.
func (h *Handler) updateAppSettings(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	set, vm, errs := parseSettingsForm(c, h.DevMode)
	vm.AppURL = AppURL(a.Slug)
	if len(errs) > 0 {
		h.region(c, unprocessable, u, vm.AppURL, view.AppSettingsForm(vm))
		return
	}
	changed := changedSettings(a.Settings(), set)
	updated := a
	if len(changed) > 0 {
		now := h.Now()
		err := h.Store.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if updated, err = tx.UpdateAppSettings(ctx, u.ID, a.ID, set, now); err != nil {
				return err
			}
			return tx.Audit(ctx, h.auditEntry(c, u, now, "app.updated", "app", a.ID, map[string]any{
				"slug": updated.Slug, "changed": changed,
			}))
		})
		if errors.Is(err, store.ErrConflict) {
			vm.Errors = view.Errors{"slug": "Another app already uses the slug “" + set.Slug + "”. Choose another."}
			h.region(c, unprocessable, u, vm.AppURL, view.AppSettingsForm(vm))
			return
		}
		if err != nil {
			web.Fail(c, err)
			return
		}
	}
	page, err := h.appPageVM(ctx, u, updated)
	if err != nil {
		web.Fail(c, err)
		return
	}
	page.Settings.Saved = true
	if updated.Slug != a.Slug {
		if !web.IsHTMX(c) {
			web.Redirect(c, AppURL(updated.Slug))
			return
		}
		wholePage(c, http.StatusOK, view.AppPage(page), AppURL(updated.Slug))
		return
	}
	page.Prices.OOB = true // its text names the default cost
	h.region(c, http.StatusOK, u, page.Settings.AppURL, view.AppSettingsForm(page.Settings),
		view.AppHeader(page.Header, true), view.ConnectPanel(page.Connect, true), view.MCPPanel(page.MCP, true),
		view.PricesSection(page.Prices))
}

// changedSettings names the settings that differ, for the audit log.
func changedSettings(old, new store.AppSettings) []string {
	var out []string
	add := func(name string, differs bool) {
		if differs {
			out = append(out, name)
		}
	}
	add("name", old.Name != new.Name)
	add("slug", old.Slug != new.Slug)
	add("upstream_url", old.UpstreamURL != new.UpstreamURL)
	add("access_token_ttl_seconds", old.AccessTokenTTLSeconds != new.AccessTokenTTLSeconds)
	add("refresh_token_ttl_seconds", old.RefreshTokenTTLSeconds != new.RefreshTokenTTLSeconds)
	add("metering_enabled", old.MeteringEnabled != new.MeteringEnabled)
	add("credits_per_call", old.CreditsPerCall != new.CreditsPerCall)
	add("free_credits", old.FreeCredits != new.FreeCredits)
	add("rate_limit_per_minute", old.RateLimitPerMinute != new.RateLimitPerMinute)
	add("mcp_enabled", old.MCPEnabled != new.MCPEnabled)
	return out
}

// deleteApp deletes the app once its slug is typed, then goes back to the dashboard.
func (h *Handler) deleteApp(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	confirm := strings.TrimSpace(c.PostForm("confirm_slug"))
	if confirm != a.Slug {
		vm := view.DangerVM{AppURL: AppURL(a.Slug), Slug: a.Slug, Confirm: confirm,
			Error: "Type the slug exactly as shown to confirm."}
		h.region(c, unprocessable, u, vm.AppURL, view.DangerZone(vm))
		return
	}
	ctx := c.Request.Context()
	now := h.Now()
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteApp(ctx, u.ID, a.ID); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "app.deleted", "app", a.ID, map[string]any{"slug": a.Slug, "name": a.Name}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/dashboard")
}
