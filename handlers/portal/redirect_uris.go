package portal

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// redirectClient loads the client of a redirect URI route; service clients have none
// (client_credentials only), so they answer 400.
func (h *Handler) redirectClient(c *gin.Context) (store.User, store.App, store.Client, bool) {
	u, a, cl, ok := h.loadClient(c)
	if !ok || !web.ParseForm(c) {
		return u, a, cl, false
	}
	if cl.Kind == store.ClientKindService {
		web.BadRequest(c, "Service clients have no redirect URIs.", "They get tokens with client credentials; nobody is redirected.")
		return u, a, cl, false
	}
	return u, a, cl, true
}

func (h *Handler) addRedirectURI(c *gin.Context) {
	u, a, cl, ok := h.redirectClient(c)
	if !ok {
		return
	}
	uri, msg := checkRedirectURI(c.PostForm("redirect_uri"))
	if msg == "" && slices.Contains(cl.RedirectURIs, uri) {
		msg = "That redirect URI is already registered."
	}
	if msg != "" {
		vm := redirectURIsVM(a, cl)
		vm.Input, vm.InputError = uri, msg
		h.region(c, unprocessable, u, ClientURL(a.Slug, cl.ID), view.RedirectURIs(vm))
		return
	}
	h.addRedirectURIs(c, u, a, cl, []string{uri}, func(vm *view.RedirectURIsVM) { vm.Input = uri })
}

// addKnownCallbacks adds the callbacks of a known AI client in one click: for a GPT,
// both the chatgpt.com and the chat.openai.com form of its callback.
func (h *Handler) addKnownCallbacks(c *gin.Context) {
	u, a, cl, ok := h.redirectClient(c)
	if !ok {
		return
	}
	preset, gptID, connectorID := c.PostForm("preset"), c.PostForm("gpt_id"), c.PostForm("connector_id")
	uris, msg, known := knownCallbacks(preset, gptID, connectorID)
	if !known {
		web.BadRequest(c, "Unknown callback preset.", "Reload the page and try again.")
		return
	}
	for _, uri := range uris {
		if msg == "" {
			_, msg = checkRedirectURI(uri)
		}
	}
	keep := func(vm *view.RedirectURIsVM) { vm.GPTID, vm.Connector = gptID, connectorID }
	if msg != "" {
		vm := redirectURIsVM(a, cl)
		keep(&vm)
		if preset == "chatgpt_connector" {
			vm.ConnError = msg
		} else {
			vm.GPTError = msg
		}
		h.region(c, unprocessable, u, ClientURL(a.Slug, cl.ID), view.RedirectURIs(vm))
		return
	}
	h.addRedirectURIs(c, u, a, cl, uris, keep)
}

// addRedirectURIs stores the URIs the client lacks, with an audit row, and answers the
// list with the new ones highlighted. keep puts what was typed back on a refusal.
func (h *Handler) addRedirectURIs(c *gin.Context, u store.User, a store.App, cl store.Client, uris []string, keep func(*view.RedirectURIsVM)) {
	ctx := c.Request.Context()
	now := h.Now()
	var updated store.Client
	var added []string
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if updated, added, err = tx.AddRedirectURIs(ctx, u.ID, a.ID, cl.ID, uris, now); err != nil || len(added) == 0 {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "client.redirect_uris_added", "client", cl.ID, map[string]any{"redirect_uris": added}))
	})
	if errors.Is(err, store.ErrTooManyRedirectURIs) {
		vm := redirectURIsVM(a, cl)
		keep(&vm)
		vm.Error = "A client can have at most " + itoa(store.MaxRedirectURIs) + " redirect URIs. Remove one first."
		h.region(c, unprocessable, u, ClientURL(a.Slug, cl.ID), view.RedirectURIs(vm))
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := redirectURIsVM(a, updated)
	vm.Added = added
	switch len(added) {
	case 0:
		vm.Notice = "Those callbacks were already registered."
	case 1:
		vm.Notice = "Added 1 redirect URI."
	default:
		vm.Notice = "Added " + itoa(len(added)) + " redirect URIs."
	}
	h.region(c, http.StatusOK, u, ClientURL(a.Slug, cl.ID), view.RedirectURIs(vm))
}

func itoa(n int) string { return strconv.Itoa(n) }

func (h *Handler) removeRedirectURI(c *gin.Context) {
	u, a, cl, ok := h.redirectClient(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	uri := c.PostForm("redirect_uri")
	now := h.Now()
	updated := cl
	notice := "Removed " + uri + "."
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		var err error
		if updated, err = tx.RemoveRedirectURI(ctx, u.ID, a.ID, cl.ID, uri, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "client.redirect_uri_removed", "client", cl.ID, map[string]any{"redirect_uri": uri}))
	})
	if errors.Is(err, store.ErrNotFound) {
		// Removed already (another tab): show the list as it is.
		updated, err = h.Store.ClientForApp(ctx, u.ID, a.ID, cl.ID)
		notice = "That redirect URI was not registered."
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := redirectURIsVM(a, updated)
	vm.Notice = notice
	h.region(c, http.StatusOK, u, ClientURL(a.Slug, cl.ID), view.RedirectURIs(vm))
}
