package portal

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// maxKeyDays is the longest expiry a key form accepts.
const maxKeyDays = 3650

// ParseKeyForm reads a key form (name, scope checkboxes, expires_in_days) and checks
// the scopes against allowed: the app's scopes for a developer key, the user's granted
// scopes for a personal key. It returns the key to store, without its hash.
func ParseKeyForm(c *gin.Context, allowed []string, now time.Time) (store.NewAPIKey, view.NewKeyFormVM, view.Errors) {
	errs := view.Errors{}
	raw := view.NewKeyFormVM{
		Name:        c.PostForm("name"),
		ExpiresDays: strings.TrimSpace(c.PostForm("expires_in_days")),
		Scopes:      c.PostFormArray("scope"),
	}
	name, msg := checkName(raw.Name, "key")
	if msg != "" {
		errs["name"] = msg
	}
	k := store.NewAPIKey{Name: name}
	seen := map[string]bool{}
	for _, s := range raw.Scopes {
		if seen[s] {
			continue
		}
		seen[s] = true
		if !contains(allowed, s) {
			errs["scope"] = "A key can only carry scopes listed here."
			continue
		}
		k.Scopes = append(k.Scopes, s)
	}
	if raw.ExpiresDays != "" {
		days, ok := intIn(raw.ExpiresDays, 1, maxKeyDays)
		if !ok {
			errs["expires_in_days"] = "Enter a number of days from 1 to 3650, or leave it empty."
		} else {
			exp := now.Add(time.Duration(days) * 24 * time.Hour)
			k.ExpiresAt = &exp
		}
	}
	return k, raw, errs
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// NewKey mints an API key: agk_ and 256 random bits. Only hash (keyed, the server's
// token hash) and hint are stored.
func NewKey(h oauth.Hasher) (key string, hash []byte, hint string) {
	key = oauth.NewToken(oauth.PrefixAPIKey)
	return key, h.Hash(key), oauth.SecretHint(key)
}

// KeyRows converts stored keys for the key lists.
func KeyRows(keys []store.APIKey, now time.Time) []view.APIKeyRow {
	out := make([]view.APIKeyRow, 0, len(keys))
	for _, k := range keys {
		out = append(out, view.APIKeyRow{
			ID: k.ID, Name: k.Name, Hint: k.Hint, AppName: k.AppName, Scopes: k.Scopes, CreatedAt: k.CreatedAt,
			ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt, RevokedAt: k.RevokedAt, Expired: k.Expired(now),
		})
	}
	return out
}

func scopeNames(scopes []store.Scope) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		out = append(out, s.Name)
	}
	return out
}

func (h *Handler) apiKeysVM(ctx context.Context, a store.App, scopes []store.Scope) (view.APIKeysVM, error) {
	keys, err := h.Store.DeveloperKeysByApp(ctx, a.ID)
	if err != nil {
		return view.APIKeysVM{}, err
	}
	return view.APIKeysVM{
		AppURL: AppURL(a.Slug), GatewayURL: URLsFor(h.BaseURL, a).GatewayURL, Scopes: scopeNames(scopes),
		Keys: KeyRows(keys, h.Now()), Form: view.NewKeyFormVM{Scopes: []string{}},
	}, nil
}

func (h *Handler) keysAnswer(c *gin.Context, status int, u store.User, a store.App, adjust func(*view.APIKeysVM)) {
	ctx := c.Request.Context()
	scopes, err := h.Store.ScopesByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm, err := h.apiKeysVM(ctx, a, scopes)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if adjust != nil {
		adjust(&vm)
	}
	h.region(c, status, u, AppURL(a.Slug), view.APIKeysSection(vm))
}

// createAPIKey creates a developer key and shows it this one time.
func (h *Handler) createAPIKey(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	scopes, err := h.Store.ScopesByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	now := h.Now()
	k, raw, errs := ParseKeyForm(c, scopeNames(scopes), now)
	if len(errs) > 0 {
		raw.Errors = errs
		h.keysAnswer(c, unprocessable, u, a, func(vm *view.APIKeysVM) { vm.Form = raw })
		return
	}
	key, hash, hint := NewKey(h.Hasher)
	k.AppID, k.Hash, k.Hint = a.ID, hash, hint
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		id, err := tx.CreateDeveloperKey(ctx, u.ID, k, now)
		if err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "api_key.created", "api_key", id, map[string]any{
			"app_id": a.ID, "kind": "developer", "name": k.Name, "scopes": k.Scopes, "expires_at": k.ExpiresAt, "hint": hint,
		}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	noStore(c)
	h.keysAnswer(c, http.StatusOK, u, a, func(vm *view.APIKeysVM) { vm.Created = &view.CreatedKeyVM{Name: k.Name, Key: key} })
}

// revokeAPIKey revokes a developer key of the app; every gateway drops it at once.
func (h *Handler) revokeAPIKey(c *gin.Context) {
	u, a, ok := h.loadApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	ctx := c.Request.Context()
	id := c.PostForm("key")
	keys, err := h.Store.DeveloperKeysByApp(ctx, a.ID)
	if err != nil {
		web.Fail(c, err)
		return
	}
	found := false
	for _, k := range keys {
		found = found || k.ID == id
	}
	if !found {
		web.NotFound(c)
		return
	}
	now := h.Now()
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if err := tx.RevokeDeveloperKey(ctx, u.ID, id, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "api_key.revoked", "api_key", id, map[string]any{"app_id": a.ID, "kind": "developer"}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.keysAnswer(c, http.StatusOK, u, a, nil)
}
