package account

import (
	"encoding/json"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/portal"
	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/account"
	pview "github.com/authgpts/authgpts/views/portal"
)

// personalKeys builds the personal keys section: the keys of every managed identity and,
// per connected app, a form offering the scopes its key holder granted it (over all its
// live grants). adjust changes it before it is returned (a form's errors, a key shown
// once).
func (h *Handler) personalKeys(c *gin.Context, p person, connected []store.ConnectedApp, adjust func(*account.PersonalKeysVM)) (account.PersonalKeysVM, error) {
	keys, err := h.Store.PersonalKeysByUser(c.Request.Context(), p.ids)
	if err != nil {
		return account.PersonalKeysVM{}, err
	}
	vm := account.PersonalKeysVM{Keys: portal.KeyRows(keys, h.Now())}
	holders := keyHolders(p, connected)
	index := map[string]int{}
	for _, r := range connected {
		if holders[r.AppID] != r.UserID {
			continue
		}
		i, ok := index[r.AppID]
		if !ok {
			i = len(vm.Apps)
			index[r.AppID] = i
			vm.Apps = append(vm.Apps, account.KeyApp{AppID: r.AppID, AppName: r.AppName,
				GatewayURL: h.BaseURL + "/gw/" + r.AppSlug, Form: pview.NewKeyFormVM{}})
		}
		for _, s := range r.Scopes {
			if !slices.Contains(vm.Apps[i].Scopes, s) {
				vm.Apps[i].Scopes = append(vm.Apps[i].Scopes, s)
			}
		}
	}
	for i := range vm.Apps {
		slices.Sort(vm.Apps[i].Scopes)
		vm.Apps[i].Form.Scopes = vm.Apps[i].Scopes // all granted scopes, unless the user unticks some
	}
	if adjust != nil {
		adjust(&vm)
	}
	return vm, nil
}

// keyHolders picks, per connected app, the identity a new personal key for it acts as:
// the signed-in identity when it holds a grant for the app, else the first linked
// identity (in group order) that does. A key acts as one identity, with at most the
// scopes that identity granted; createKey asks store.KeyHolder, which picks the same.
func keyHolders(p person, connected []store.ConnectedApp) map[string]string {
	rank := make(map[string]int, len(p.ids))
	for i, id := range p.ids {
		rank[id] = i
	}
	holders := map[string]string{}
	for _, r := range connected {
		if h, ok := holders[r.AppID]; !ok || rank[r.UserID] < rank[h] {
			holders[r.AppID] = r.UserID
		}
	}
	return holders
}

// keysAnswer re-renders the personal keys section.
func (h *Handler) keysAnswer(c *gin.Context, status int, p person, adjust func(*account.PersonalKeysVM)) {
	rows, err := h.Store.ConnectedApps(c.Request.Context(), p.ids, store.MonthStart(h.Now()))
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm, err := h.personalKeys(c, p, rows, adjust)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if !web.IsPartial(c) {
		if status == http.StatusOK && vm.Created == nil {
			web.Redirect(c, "/account")
			return
		}
		web.Render(c, status, account.Page(account.PageVM{Chrome: chrome(p.self, "Account"), Email: p.self.DisplayName(),
			Identities: h.identities(c, p), Apps: connectedAppRows(p, rows), Keys: vm}))
		return
	}
	web.Render(c, status, account.PersonalKeys(vm))
}

// createKey makes a personal key for an app the user connected (with any linked
// identity: the key acts as that identity, keyHolders), with at most the scopes that
// identity granted it, and shows it once.
func (h *Handler) createKey(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	p, err := h.person(c)
	if err != nil {
		web.Fail(c, err)
		return
	}
	u := p.self
	appID := c.PostForm("app")
	if !store.ValidUUID(appID) {
		web.NotFound(c)
		return
	}
	// The same identity keyHolders picks for the app's form (the first of p.ids with a
	// live grant), and at most the scopes it granted.
	holder, granted, err := h.Store.KeyHolder(ctx, p.ids, appID)
	if err != nil {
		web.Fail(c, err) // ErrNotFound: not an app the user's identities connected (404)
		return
	}
	now := h.Now()
	k, raw, errs := portal.ParseKeyForm(c, granted, now)
	if len(errs) > 0 {
		if _, ok := errs["scope"]; ok {
			errs["scope"] = "A personal key can only carry scopes you granted this app."
		}
		raw.Errors = errs
		h.keysAnswer(c, http.StatusUnprocessableEntity, p, func(vm *account.PersonalKeysVM) {
			for i := range vm.Apps {
				if vm.Apps[i].AppID == appID {
					vm.Apps[i].Form, vm.Apps[i].Open = raw, true
				}
			}
		})
		return
	}
	key, hash, hint := portal.NewKey(h.Hasher)
	k.AppID, k.Hash, k.Hint = appID, hash, hint
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		id, err := tx.CreatePersonalKey(ctx, holder, k, now)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{At: now, ActorID: u.ID, ActorEmail: u.Email, Action: "api_key.created",
			TargetType: "api_key", TargetID: id, IP: c.ClientIP(),
			Details: auditDetails(map[string]any{"app_id": appID, "kind": "personal", "user_id": holder, "name": k.Name, "scopes": k.Scopes, "expires_at": k.ExpiresAt, "hint": hint})})
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	h.keysAnswer(c, http.StatusOK, p, func(vm *account.PersonalKeysVM) {
		vm.Created = &pview.CreatedKeyVM{Name: k.Name, Key: key}
	})
}

// revokeKey revokes a personal key of any of the user's linked identities; another
// user's key is 404.
func (h *Handler) revokeKey(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	p, err := h.person(c)
	if err != nil {
		web.Fail(c, err)
		return
	}
	u := p.self
	id := c.PostForm("key")
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.RevokePersonalKey(ctx, p.ids, id, now); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{At: now, ActorID: u.ID, ActorEmail: u.Email, Action: "api_key.revoked",
			TargetType: "api_key", TargetID: id, IP: c.ClientIP(), Details: auditDetails(map[string]any{"kind": "personal"})})
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.keysAnswer(c, http.StatusOK, p, nil)
}

func auditDetails(m map[string]any) []byte {
	b, _ := json.Marshal(m)
	return b
}
