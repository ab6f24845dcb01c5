package portal

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// createClient adds a client to the app; a confidential one's secret is shown once in
// the answer.
func (h *Handler) createClient(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	f, errs := parseClientForm(c)
	d, err := h.loadAppPageData(ctx, a)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if len(errs) == 0 && len(d.clients) >= MaxClientsPerApp {
		errs["name"] = "An app can have at most 50 clients. Delete one first."
	}
	if len(errs) > 0 {
		vm := clientListVM(a, d.clients)
		vm.Form = view.NewClientFormVM{Name: c.PostForm("name"), Kind: f.Kind, Errors: errs}
		h.region(c, unprocessable, u, AppURL(a.Slug), view.ClientList(vm))
		return
	}
	nc, secret := NewCredentials(h.Hasher, f.Kind)
	nc.AppID, nc.Name, nc.Origin = a.ID, f.Name, store.ClientOriginPortal
	now := h.Now()
	var created store.Client
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		// a is the signed-in developer's app: loadApp looked it up by owner.
		var err error
		if created, err = tx.CreateClient(ctx, nc, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "client.created", "client", created.ID, map[string]any{
			"app_id": a.ID, "name": created.Name, "kind": created.Kind,
		}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	d.clients = append(d.clients, created)
	connect, err := h.connectPanelVM(ctx, a, d.clients, d.scopes)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := clientListVM(a, d.clients)
	vm.Created = &view.CreatedClientVM{Name: created.Name, ClientID: created.ID, Secret: secret, Kind: created.Kind, URL: ClientURL(a.Slug, created.ID)}
	noStore(c)
	h.region(c, http.StatusOK, u, AppURL(a.Slug), view.ClientList(vm), view.ConnectPanel(connect, true))
}

func (h *Handler) clientPage(c *gin.Context) {
	u, a, cl, ok := h.loadClient(c)
	if !ok {
		return
	}
	vm, err := h.clientPageVM(c.Request.Context(), u, a, cl)
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Render(c, http.StatusOK, view.ClientPage(vm))
}

func (h *Handler) renameClient(c *gin.Context) {
	u, a, cl, ok := h.loadClient(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	name, msg := checkName(c.PostForm("name"), "client")
	if msg != "" {
		vm := clientNameVM(a, cl)
		vm.Input, vm.Error, vm.Editing = name, msg, true
		h.region(c, unprocessable, u, ClientURL(a.Slug, cl.ID), view.ClientName(vm))
		return
	}
	now := h.Now()
	renamed := cl
	if name != cl.Name {
		err := h.Store.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if renamed, err = tx.RenameClient(ctx, u.ID, a.ID, cl.ID, name, now); err != nil {
				return err
			}
			return tx.Audit(ctx, h.auditEntry(c, u, now, "client.renamed", "client", cl.ID, map[string]any{"from": cl.Name, "to": name}))
		})
		if err != nil {
			web.Fail(c, err)
			return
		}
	}
	h.region(c, http.StatusOK, u, ClientURL(a.Slug, cl.ID), view.ClientName(clientNameVM(a, renamed)))
}

// deleteClient deletes the client, its secrets and grants, and returns to the app.
func (h *Handler) deleteClient(c *gin.Context) {
	u, a, cl, ok := h.loadClient(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	now := h.Now()
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteClient(ctx, u.ID, a.ID, cl.ID); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "client.deleted", "client", cl.ID, map[string]any{"app_id": a.ID, "name": cl.Name, "kind": cl.Kind}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, AppURL(a.Slug)+"#"+view.IDClientList)
}
