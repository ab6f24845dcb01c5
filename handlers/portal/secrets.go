package portal

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	view "github.com/authgpts/authgpts/views/portal"
)

// rotateSecret gives the client a new secret, shown once; the previous ones keep
// working for the overlap the developer chose (none, 1 h or 24 h) so a live GPT is not
// cut off while its settings are updated.
func (h *Handler) rotateSecret(c *gin.Context) {
	u, a, cl, ok := h.loadClient(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	if !cl.IsConfidential() {
		web.BadRequest(c, "Public clients have no secret.", "They prove themselves with PKCE instead.")
		return
	}
	ctx := c.Request.Context()
	choice := c.PostForm("overlap")
	overlap, valid := overlaps[choice]
	if !valid {
		secrets, err := h.Store.ActiveSecrets(ctx, cl.ID, h.Now())
		if err != nil {
			web.Fail(c, err)
			return
		}
		vm := view.ClientSecretVM{URL: ClientURL(a.Slug, cl.ID), Secrets: secretRows(secrets),
			Error: "Choose how long the old secret keeps working: no overlap, 1 hour or 24 hours."}
		h.region(c, unprocessable, u, vm.URL, view.ClientSecret(vm))
		return
	}
	secret := oauth.NewToken(oauth.PrefixClientSecret)
	now := h.Now()
	var before, after []store.ClientSecret
	err := h.Store.InTx(ctx, func(tx *store.Tx) error {
		// Lock the client so that two rotations run one after the other.
		if _, err := tx.LockClient(ctx, u.ID, a.ID, cl.ID); err != nil {
			return err
		}
		var err error
		if before, err = tx.ActiveSecrets(ctx, cl.ID, now); err != nil {
			return err
		}
		if err := tx.RotateClientSecret(ctx, cl.ID, h.Hasher.Hash(secret), oauth.SecretHint(secret), overlap, now); err != nil {
			return err
		}
		if after, err = tx.ActiveSecrets(ctx, cl.ID, now); err != nil {
			return err
		}
		return tx.Audit(ctx, h.auditEntry(c, u, now, "client.secret_rotated", "client", cl.ID, map[string]any{
			"overlap_seconds": int(overlap / time.Second),
		}))
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := view.ClientSecretVM{URL: ClientURL(a.Slug, cl.ID), Secrets: secretRows(after), NewSecret: secret, Overlap: choice}
	if len(before) > 0 {
		if overlap > 0 {
			until := now.Add(overlap)
			vm.OldUntil = &until
		} else {
			vm.OldStopped = true
		}
	}
	noStore(c)
	h.region(c, http.StatusOK, u, vm.URL, view.ClientSecret(vm))
}
