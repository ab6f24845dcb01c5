package account

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/account"
)

// linkWindow bounds the proof that two identities are one person: both signed in, one
// after the other, in the same browser, the first at most linkWindow before the second,
// and the link confirmed at most linkWindow after the second. A browser left signed in
// for hours proves nothing about whoever uses it next.
const linkWindow = 10 * time.Minute

// person is the signed-in identity with the identities linked to it.
type person struct {
	self  store.User
	users []store.User // self first
	ids   []string
}

func (h *Handler) person(c *gin.Context) (person, error) {
	u, _ := web.CurrentUser(c)
	users, err := h.Store.IdentityGroup(c.Request.Context(), u.ID)
	if err != nil {
		return person{}, err
	}
	return person{self: u, users: users, ids: store.UserIDs(users)}, nil
}

// has reports whether userID is one of the person's identities.
func (p person) has(userID string) bool { return slices.Contains(p.ids, userID) }

// label names another identity of the person on rows it holds; "" for the one signed
// in, and when nothing is linked.
func (p person) label(userID string) string {
	if userID == p.self.ID {
		return ""
	}
	for _, u := range p.users {
		if u.ID == userID {
			return u.DisplayName()
		}
	}
	return ""
}

// emailForCodes is where a code confirming a change to the whole account goes: the
// signed-in identity's verified email, else a linked identity's.
func (p person) emailForCodes() string {
	for _, u := range p.users {
		if u.Email != "" {
			return u.Email
		}
	}
	return ""
}

func identityOf(u store.User, current bool) account.Identity {
	source := "Email code"
	switch {
	case u.Issuer == store.IssuerGitHub:
		source = "GitHub"
	case u.Issuer != "":
		source = u.Issuer
		if iu, err := url.Parse(u.Issuer); err == nil && iu.Host != "" {
			source = iu.Host + iu.Path
		}
	}
	name := u.Email
	if name == "" {
		name = u.Subject
	}
	return account.Identity{ID: u.ID, Name: name, Source: source, Current: current}
}

// identities builds the "Sign-in identities" section.
func (h *Handler) identities(c *gin.Context, p person) account.IdentitiesVM {
	vm := account.IdentitiesVM{Window: "10 minutes",
		SignInAnotherURL: "/login?" + url.Values{"reauth": {"link"}, "return_to": {"/account"}}.Encode()}
	for _, u := range p.users {
		vm.Items = append(vm.Items, identityOf(u, u.ID == p.self.ID))
	}
	if prev, ok := h.linkOffer(c, p); ok {
		offer := identityOf(prev.User, false)
		vm.Offer = &offer
	}
	return vm
}

// linkOffer returns the identity this browser's session replaced when both sign-ins
// are recent enough to prove one person holds both (linkWindow), and it is not linked
// already.
func (h *Handler) linkOffer(c *gin.Context, p person) (store.PreviousIdentity, bool) {
	hash, ok := web.SessionHash(c)
	if !ok {
		return store.PreviousIdentity{}, false
	}
	now := h.Now()
	prev, err := h.Store.SessionPrevious(c.Request.Context(), hash, now)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			web.Log(c).Warn("account: previous identity", "err", err)
		}
		return store.PreviousIdentity{}, false
	}
	fresh := !now.After(prev.SessionStarted.Add(linkWindow)) && !prev.PrevStarted.Before(prev.SessionStarted.Add(-linkWindow))
	if !fresh || prev.IsSuspended() || p.has(prev.ID) {
		return store.PreviousIdentity{}, false
	}
	return prev, true
}

// linkIdentity links the offered identity (form field identity) with the signed-in one.
func (h *Handler) linkIdentity(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	p, err := h.person(c)
	if err != nil {
		web.Fail(c, err)
		return
	}
	prev, ok := h.linkOffer(c, p)
	if !ok || prev.ID != c.PostForm("identity") {
		web.Error(c, http.StatusConflict, "That link offer has expired.",
			"Sign in with the other identity in this browser, then with this one, within 10 minutes, and link them then.")
		return
	}
	err = h.Store.LinkIdentities(c.Request.Context(), p.self.ID, prev.ID, store.AuditEntry{
		ActorID: p.self.ID, ActorEmail: p.self.Email, IP: c.ClientIP(), At: h.Now()})
	switch {
	case errors.Is(err, store.ErrConflict):
		web.Error(c, http.StatusConflict, "This account already links as many identities as it may.",
			"Unlink one you no longer use first.")
		return
	case err != nil:
		web.Fail(c, err)
		return
	}
	h.forgetOffer(c)
	web.Log(c).Info("identities linked", "user_id", p.self.ID, "linked_user_id", prev.ID)
	web.Redirect(c, "/account")
}

// declineLink drops the offer ("Not me").
func (h *Handler) declineLink(c *gin.Context) {
	h.forgetOffer(c)
	web.Redirect(c, "/account")
}

func (h *Handler) forgetOffer(c *gin.Context) {
	if hash, ok := web.SessionHash(c); ok {
		if err := h.Store.ForgetPrevious(c.Request.Context(), hash); err != nil {
			web.Log(c).Warn("account: forget previous identity", "err", err)
		}
	}
}

// unlinkIdentity takes another identity out of this account; it is a separate account
// again, with what it holds. An identity that is not linked here is 404.
func (h *Handler) unlinkIdentity(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	err := h.Store.UnlinkIdentity(c.Request.Context(), u.ID, c.Param("id"), store.AuditEntry{
		ActorID: u.ID, ActorEmail: u.Email, IP: c.ClientIP(), At: h.Now()})
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/account")
}
