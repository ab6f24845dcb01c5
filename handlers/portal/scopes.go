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

// scopesAnswer re-renders the scope list, and the connect panel whose scope string
// follows the default scopes.
func (h *Handler) scopesAnswer(c *gin.Context, status int, u store.User, a store.App, adjust func(*view.ScopeListVM)) {
	ctx := c.Request.Context()
	d, err := h.loadAppPageData(ctx, a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	connect, err := h.connectPanelVM(ctx, a, d.clients, d.scopes)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := scopeListVM(a, d.scopes)
	if adjust != nil {
		adjust(&vm)
	}
	h.region(c, status, u, AppURL(a.Slug), view.ScopeList(vm), view.ConnectPanel(connect, true))
}

func (h *Handler) createScope(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	f, errs := parseScopeForm(c)
	keepForm := func(errs view.Errors) func(*view.ScopeListVM) {
		return func(vm *view.ScopeListVM) {
			vm.Form = view.NewScopeFormVM{Name: f.Name, Description: f.Description, IsDefault: f.IsDefault, Errors: errs}
		}
	}
	if len(errs) > 0 {
		h.scopesAnswer(c, unprocessable, u, a, keepForm(errs))
		return
	}
	scopes, err := h.Store.ScopesByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	custom := 0
	for _, s := range scopes {
		if !s.Builtin {
			custom++
		}
	}
	if custom >= MaxCustomScopes {
		h.scopesAnswer(c, unprocessable, u, a, keepForm(view.Errors{"name": "An app can have at most 50 custom scopes. Delete one first."}))
		return
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.CreateScope(ctx, u.ID, a.ID, store.Scope{Name: f.Name, Description: f.Description, IsDefault: f.IsDefault}, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "scope.created", "app", a.ID, map[string]any{
			"scope": f.Name, "description": f.Description, "is_default": f.IsDefault,
		}))
	})
	if errors.Is(err, store.ErrConflict) {
		h.scopesAnswer(c, unprocessable, u, a, keepForm(view.Errors{"name": "The app already has a scope named “" + f.Name + "”."}))
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.scopesAnswer(c, http.StatusOK, u, a, nil)
}

// updateScope changes a scope's description (custom scopes) or default flag.
func (h *Handler) updateScope(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	name := c.PostForm("name")
	description := c.PostForm("description")
	isDefault := c.PostForm("is_default") == "on"
	scope, found, err := h.scope(c, a, name)
	if err != nil || !found {
		return
	}
	if scope.Builtin {
		// Built-ins keep their standard descriptions; only the default flag changes.
		description = scope.Description
	} else {
		msg := checkDescription(strings.TrimSpace(description))
		if msg != "" {
			h.scopesAnswer(c, unprocessable, u, a, func(vm *view.ScopeListVM) {
				for i := range vm.Scopes {
					if vm.Scopes[i].Name == name {
						vm.Scopes[i].Description, vm.Scopes[i].Error = description, msg
					}
				}
			})
			return
		}
		description = strings.TrimSpace(description)
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.UpdateScope(ctx, u.ID, a.ID, name, description, isDefault); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "scope.updated", "app", a.ID, map[string]any{
			"scope": name, "description": description, "is_default": isDefault,
		}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.scopesAnswer(c, http.StatusOK, u, a, nil)
}

// deleteScope removes a custom scope; built-ins answer 400.
func (h *Handler) deleteScope(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	name := c.PostForm("name")
	scope, found, err := h.scope(c, a, name)
	if err != nil || !found {
		return
	}
	if scope.Builtin {
		web.BadRequest(c, "Built-in scopes cannot be deleted.", "Mark it optional instead, so it is granted only when a client asks for it.")
		return
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteScope(ctx, u.ID, a.ID, name); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "scope.deleted", "app", a.ID, map[string]any{"scope": name}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.scopesAnswer(c, http.StatusOK, u, a, nil)
}

// scope finds one scope of the app by name, answering 404 itself when there is none.
func (h *Handler) scope(c *gin.Context, a store.App, name string) (store.Scope, bool, error) {
	scopes, err := h.Store.ScopesByApp(c.Request.Context(), a.ID)
	if err != nil {
		web.Fail(c, err)
		return store.Scope{}, false, err
	}
	for _, s := range scopes {
		if s.Name == name {
			return s, true, nil
		}
	}
	web.NotFound(c)
	return store.Scope{}, false, nil
}
