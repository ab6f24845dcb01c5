// Package account is the end user's own page.
//
//	GET  /account                      who is signed in, their linked sign-in identities, and
//	                                   the apps, keys and linked accounts of all of them
//	                                   (disconnect: handlers/connections)
//	POST /account/identities/start     ask to link the next identity signed in with here
//	POST /account/identities/link      link the identity this browser signed in with before
//	POST /account/identities/decline   drop that offer
//	POST /account/identities/:id/unlink  make a linked identity a separate account again
//	POST /account/grants/:id/revoke    revoke a connected app (its tokens stop everywhere)
//	POST /account/keys                 create a personal API key for a connected app (#personal-keys; shown once)
//	POST /account/keys/revoke          revoke a personal API key (it stops on every instance)
//	POST /account/sessions/end-all     sign out everywhere
//	POST /account/delete               mail a code to confirm deleting the account
//	POST /account/delete/confirm       check the code and delete the account
package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/emailcode"
	"github.com/authgpts/authgpts/views/account"
	"github.com/authgpts/authgpts/views/email/mailer"
	"github.com/authgpts/authgpts/views/layout"
)

// Handler serves /account; every route requires a signed-in user.
type Handler struct {
	Store    *store.Store
	Sessions *web.Sessions
	Codes    *emailcode.Codes
	Now      func() time.Time
	// Hasher hashes personal API keys as the gateway looks them up (DerivedKeys.TokenHash).
	Hasher oauth.Hasher
	// BaseURL is the public base URL; keys call <base>/gw/<slug>.
	BaseURL string
	// Mail tells linked identities that a link was made (nil: no mail).
	Mail mailer.Mailer
	// OperatorIssuers are the issuers of the portal's own sign-in providers: with email
	// codes and GitHub, the identities that manage the identities linked with them.
	OperatorIssuers []string
	// Connections forgets the user's cached third-party tokens and sends queued
	// revocations to the providers after a grant is revoked or the account deleted
	// (nil: the NOTIFY and the background sweep do it).
	Connections interface {
		AccountsEnded(ctx context.Context, userID string)
	}
}

// Register mounts the account routes on a signed-in browser group.
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/account", h.page)
	r.POST("/account/identities/start", h.startLink)
	r.POST("/account/identities/link", h.linkIdentity)
	r.POST("/account/identities/decline", h.declineLink)
	r.POST("/account/identities/:id/unlink", h.unlinkIdentity)
	r.POST("/account/grants/:id/revoke", h.revokeGrant)
	r.POST("/account/keys", h.createKey)
	r.POST("/account/keys/revoke", h.revokeKey)
	r.POST("/account/sessions/end-all", h.endAllSessions)
	r.POST("/account/delete", h.startDelete)
	r.POST("/account/delete/confirm", h.confirmDelete)
}

func chrome(u store.User, title string) layout.Chrome {
	return layout.Chrome{Title: title, UserEmail: u.DisplayName(), IsAdmin: u.IsAdmin, Active: "account"}
}

func (h *Handler) page(c *gin.Context) {
	p, err := h.person(c)
	if err != nil {
		web.Fail(c, err)
		return
	}
	rows, err := h.Store.ConnectedApps(c.Request.Context(), p.ids, store.MonthStart(h.Now()))
	if err != nil {
		web.Fail(c, err)
		return
	}
	keys, err := h.personalKeys(c, p, rows, nil)
	if err != nil {
		web.Fail(c, err)
		return
	}
	linked, err := h.linkedAccounts(c, p)
	if err != nil {
		web.Fail(c, err)
		return
	}
	// Connect opens a popup that must keep this page as its opener (handlers/connections).
	c.Header("Cross-Origin-Opener-Policy", "same-origin-allow-popups")
	web.Render(c, http.StatusOK, account.Page(account.PageVM{Chrome: chrome(p.self, "Account"), Email: p.self.DisplayName(),
		Identities: h.identities(c, p), Apps: connectedAppRows(p, rows), Keys: keys, Linked: linked}))
}

// linkedAccounts builds the "Linked accounts" section: the accounts of every linked
// identity; only the signed-in identity's can be (re)connected from here, because a
// connection is made for the identity signed in.
func (h *Handler) linkedAccounts(c *gin.Context, p person) (account.LinkedAccountsVM, error) {
	ctx := c.Request.Context()
	rows, err := h.Store.LinkedAccountsByUser(ctx, p.ids)
	if err != nil {
		return account.LinkedAccountsVM{}, err
	}
	open, err := h.Store.ConnectableProviders(ctx, p.self.ID)
	if err != nil {
		return account.LinkedAccountsVM{}, err
	}
	connectURL := func(provider, slug string) string {
		return "/connections/" + provider + "/start?" + url.Values{"app": {slug}, "return_to": {"/account"}}.Encode()
	}
	var vm account.LinkedAccountsVM
	for _, r := range rows {
		last := "never (the first token is still in use)"
		if r.LastRefreshAt != nil {
			last = r.LastRefreshAt.UTC().Format("2 Jan 2006 15:04 UTC")
		}
		if r.ExpiresAt == nil && r.Status == store.ConnectionActive {
			last = "not needed (the token does not expire)"
		}
		row := account.LinkedAccount{ID: r.ID, Provider: r.DisplayName, AppName: r.AppName, AccountName: r.AccountName,
			Scopes: r.Scopes, Status: r.Status, LastRefresh: last, Identity: p.label(r.UserID)}
		if r.UserID == p.self.ID {
			row.ConnectURL = connectURL(r.Provider, r.AppSlug)
		}
		vm.Accounts = append(vm.Accounts, row)
	}
	for _, p := range open {
		vm.Accounts = append(vm.Accounts, account.LinkedAccount{Provider: p.DisplayName, AppName: p.AppName, Scopes: p.Scopes,
			ConnectURL: connectURL(p.Provider, p.AppSlug)})
	}
	return vm, nil
}

// accountsEnded tells the vault, after a commit, that userID's linked accounts ended.
func (h *Handler) accountsEnded(c *gin.Context, userID string) {
	if h.Connections != nil {
		h.Connections.AccountsEnded(context.WithoutCancel(c.Request.Context()), userID)
	}
}

func (h *Handler) connectedApps(c *gin.Context, p person) ([]account.ConnectedApp, error) {
	rows, err := h.Store.ConnectedApps(c.Request.Context(), p.ids, store.MonthStart(h.Now()))
	if err != nil {
		return nil, err
	}
	return connectedAppRows(p, rows), nil
}

func connectedAppRows(p person, rows []store.ConnectedApp) []account.ConnectedApp {
	out := make([]account.ConnectedApp, 0, len(rows))
	for _, r := range rows {
		last := "never"
		if r.LastUsedAt != nil {
			last = r.LastUsedAt.UTC().Format("Jan 2, 2006")
		}
		usage := fmt.Sprintf("%d calls this month", r.CallsThisMonth)
		switch {
		case r.Metering && r.Balance != nil:
			usage += fmt.Sprintf(" · %d credits left", *r.Balance)
		case r.Metering:
			usage += " · free credits on your first call"
		}
		out = append(out, account.ConnectedApp{
			GrantID: r.GrantID, Identity: p.label(r.UserID), AppName: r.AppName, Developer: r.DeveloperEmail, ClientName: r.ClientName,
			Scopes: r.Scopes, FirstUsed: r.CreatedAt.UTC().Format("Jan 2, 2006"), LastUsed: last, Usage: usage,
		})
	}
	return out
}

// revokeGrant ends one of the user's grants: its refresh tokens at once, its access
// tokens at the gateway and introspection on every instance through the revocation
// notice. A grant of any linked identity can be revoked; another user's grant is 404.
func (h *Handler) revokeGrant(c *gin.Context) {
	ctx := c.Request.Context()
	p, err := h.person(c)
	if err != nil {
		web.Fail(c, err)
		return
	}
	u := p.self
	g, err := h.Store.GrantByID(ctx, c.Param("id"))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		web.Fail(c, err) // a database that cannot be reached is a 503, not "nothing here"
		return
	}
	if err != nil || !p.has(g.UserID) || g.RevokedAt != nil {
		web.NotFound(c)
		return
	}
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.RevokeGrantBy(ctx, g.ID, store.RevokedByUser, h.Now()); err != nil {
			return err
		}
		return tx.Audit(ctx, store.AuditEntry{ActorID: u.ID, ActorEmail: u.Email, Action: "grant.revoked_by_user",
			TargetType: "grant", TargetID: g.ID, IP: c.ClientIP(), At: h.Now()})
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	h.accountsEnded(c, g.UserID)
	if !web.IsPartial(c) {
		web.Redirect(c, "/account")
		return
	}
	apps, err := h.connectedApps(c, p)
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Render(c, http.StatusOK, account.ConnectedApps(apps))
}

func (h *Handler) endAllSessions(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	err := h.Store.InTx(c.Request.Context(), func(tx *store.Tx) error {
		if err := tx.DeleteUserSessions(c.Request.Context(), u.ID); err != nil {
			return err
		}
		return tx.Audit(c.Request.Context(), store.AuditEntry{ActorID: u.ID, ActorEmail: u.Email, Action: "user.signed_out_everywhere", TargetType: "user", TargetID: u.ID, IP: c.ClientIP(), At: h.Now()})
	})
	if err != nil {
		web.Fail(c, err)
		return
	}
	if err := h.Sessions.SignOut(c); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/login")
}

// deletion is the identity a deletion removes (the signed-in one: linked identities
// stay, each deleted only with its own email's code) and its confirmation page; false
// when the answer is written already.
func (h *Handler) deletion(c *gin.Context) (store.User, account.DeleteVM, bool) {
	p, err := h.person(c)
	if err != nil {
		web.Fail(c, err)
		return store.User{}, account.DeleteVM{}, false
	}
	vm := account.DeleteVM{Chrome: chrome(p.self, "Delete account"), Email: p.self.Email, OtherIdentities: p.linked - 1}
	return p.self, vm, true
}

// startDelete mails the code that confirms deleting the signed-in identity to its
// verified email.
func (h *Handler) startDelete(c *gin.Context) {
	_, vm, ok := h.deletion(c)
	if !ok {
		return
	}
	if vm.Email == "" { // an identity whose provider vouched for no email: no code can reach it
		web.Error(c, http.StatusConflict, "This account has no verified email address to confirm the deletion with.",
			"Ask the operator of this service to delete it.")
		return
	}
	verdict, err := h.Codes.Send(c.Request.Context(), vm.Email, c.ClientIP(), emailcode.DeleteAccount)
	switch {
	case errors.Is(err, emailcode.ErrNotSent):
		web.Log(c).Error("send deletion code", "err", err)
		web.Error(c, http.StatusServiceUnavailable, "We could not send the email just now.", "Try again in a minute.")
		return
	case err != nil:
		web.Fail(c, err)
		return
	case !verdict.Allowed:
		c.Header("Retry-After", fmt.Sprint(int(verdict.RetryAfter.Seconds()+0.5)))
		vm.Notice = "A code was sent moments ago; the last one still works. Wait a little before asking for another."
		web.Render(c, http.StatusTooManyRequests, account.DeletePage(vm))
		return
	}
	web.Render(c, http.StatusOK, account.DeletePage(vm))
}

func (h *Handler) confirmDelete(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	u, vm, ok := h.deletion(c)
	if !ok {
		return
	}
	code, ok := emailcode.ParseCode(c.PostForm("code"))
	if !ok {
		vm.Error = "Enter the 6 digits from the email."
		web.Render(c, http.StatusUnprocessableEntity, account.DeletePage(vm))
		return
	}
	valid, err := h.Codes.Check(c.Request.Context(), u.Email, emailcode.DeleteAccount, code)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if !valid {
		vm.Error = "That code is wrong or has expired."
		web.Render(c, http.StatusUnprocessableEntity, account.DeletePage(vm))
		return
	}
	if err := h.Store.DeleteUser(c.Request.Context(), u, h.Now()); err != nil {
		web.Fail(c, err)
		return
	}
	web.Log(c).Info("account deleted", "user_id", u.ID)
	h.accountsEnded(c, u.ID)
	if err := h.Sessions.SignOut(c); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/login?deleted=1")
}
