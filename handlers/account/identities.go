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
	"github.com/authgpts/authgpts/views/email"
	"github.com/authgpts/authgpts/views/email/mailer"
)

// linkWindow bounds the proof that two identities are one person: signed in with one at
// most linkWindow ago, they ask to link another (POST /account/identities/start), sign in
// with it in the same browser at most linkWindow later, and confirm the link at most
// linkWindow after that. Both identities express the intent, and a browser left signed
// in for longer offers nothing to whoever finds it.
const linkWindow = 10 * time.Minute

// person is the signed-in identity with the identities this page manages for it.
//
// Only an identity whose subject the operator can vouch for manages the identities
// linked with it: an email code, GitHub, or the portal's own sign-in provider (trusted).
// An identity from an app's own provider (an OpenID Connect issuer or login page the
// app's developer runs) could be signed in by that developer at will, so signed in with
// it the page manages that identity alone. Suspended identities are left out.
type person struct {
	self    store.User
	trusted bool         // self manages the identities linked with it
	users   []store.User // the identities managed here, self first
	ids     []string
	linked  int // identities in self's group, self included
}

func (h *Handler) person(c *gin.Context) (person, error) {
	u, _ := web.CurrentUser(c)
	group, err := h.Store.IdentityGroup(c.Request.Context(), u.ID)
	if err != nil {
		return person{}, err
	}
	p := person{self: u, trusted: h.trusted(u), linked: len(group)}
	for _, m := range group {
		if m.ID == u.ID || p.trusted && !m.IsSuspended() {
			p.users = append(p.users, m)
		}
	}
	p.ids = store.UserIDs(p.users)
	return p, nil
}

// ManagedIdentities returns the IDs of the identities the signed-in user manages on
// /account (person): the routes of other packages there use it.
func (h *Handler) ManagedIdentities(c *gin.Context) ([]string, error) {
	p, err := h.person(c)
	return p.ids, err
}

// trusted reports whether the operator vouches for u's subject: an email-code account,
// a GitHub identity, or one from the portal's sign-in provider.
func (h *Handler) trusted(u store.User) bool {
	return u.Issuer == "" || u.Issuer == store.IssuerGitHub || slices.Contains(h.OperatorIssuers, u.Issuer)
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
	// Signed in with an untrusted identity, the page names none of the others: whoever
	// runs its provider could be reading.
	vm := account.IdentitiesVM{Window: "10 minutes", Managed: p.trusted, ManagedElsewhere: !p.trusted && p.linked > 1}
	for _, u := range p.users {
		vm.Items = append(vm.Items, identityOf(u, u.ID == p.self.ID))
	}
	if prev, ok := h.linkOffer(c, p); ok {
		offer := identityOf(prev.User, false)
		vm.Offer = &offer
	}
	return vm
}

// linkOffer returns the identity this browser's session replaced after that identity
// asked to link another, while both steps are recent enough (linkWindow), and when it is
// not linked already.
func (h *Handler) linkOffer(c *gin.Context, p person) (store.LinkOffer, bool) {
	hash, ok := web.SessionHash(c)
	if !ok {
		return store.LinkOffer{}, false
	}
	now := h.Now()
	offer, err := h.Store.SessionLinkOffer(c.Request.Context(), hash, now)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			web.Log(c).Warn("account: link offer", "err", err)
		}
		return store.LinkOffer{}, false
	}
	fresh := !now.After(offer.SessionStarted.Add(linkWindow)) && !offer.AskedAt.Before(offer.SessionStarted.Add(-linkWindow))
	// Two identities from apps' own providers would manage nothing of each other.
	useful := p.trusted || h.trusted(offer.User)
	if !fresh || !useful || offer.IsSuspended() || p.has(offer.ID) {
		return store.LinkOffer{}, false
	}
	// An untrusted identity joins one group at most: whoever runs its provider could
	// otherwise link an identity of their own through it into someone else's group.
	if !p.trusted && p.linked > 1 {
		return store.LinkOffer{}, false
	}
	if !h.trusted(offer.User) {
		if group, err := h.Store.IdentityGroup(c.Request.Context(), offer.ID); err != nil || len(group) > 1 {
			return store.LinkOffer{}, false
		}
	}
	return offer, true
}

// untrusted returns which of us must be alone to be linked (LinkIdentities).
func (h *Handler) untrusted(us ...store.User) []string {
	var out []string
	for _, u := range us {
		if !h.trusted(u) {
			out = append(out, u.ID)
		}
	}
	return out
}

// startLink records that the signed-in identity asks to link the next one signed in
// with in this browser, and sends the browser to sign in (an email code here; an
// app's provider is reached by using that app).
func (h *Handler) startLink(c *gin.Context) {
	hash, ok := web.SessionHash(c)
	started, _ := web.SessionStarted(c)
	if !ok {
		web.Redirect(c, "/login")
		return
	}
	// Only a fresh sign-in may ask: a browser left signed in for longer gives whoever
	// finds it no way to link their own identity in.
	if h.Now().After(started.Add(linkWindow)) {
		web.Redirect(c, "/login?"+url.Values{"reauth": {"1"}, "return_to": {"/account"}}.Encode())
		return
	}
	if err := h.Store.MarkLinkIntent(c.Request.Context(), hash, h.Now()); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/login?"+url.Values{"reauth": {"link"}, "return_to": {"/account"}}.Encode())
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
			"Signed in with the other identity, choose \"Sign in with another identity\" on this page, then sign in with this one within 10 minutes and link them then.")
		return
	}
	err = h.Store.LinkIdentities(c.Request.Context(), p.self.ID, prev.ID, h.untrusted(p.self, prev.User), store.AuditEntry{
		ActorID: p.self.ID, ActorEmail: p.self.Email, IP: c.ClientIP(), At: h.Now()})
	switch {
	case errors.Is(err, store.ErrLinkedElsewhere):
		web.Error(c, http.StatusConflict, "That identity is linked with others already.",
			"An identity from an app's own sign-in can be linked into one account only: unlink it there first.")
		return
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
	h.mailLinked(c, p.self, prev.User)
	web.Redirect(c, "/account")
}

// mailLinked tells every identity of the new group that has an email that a and b were
// linked, so a link nobody meant is seen and undone (Unlink). Best effort: the link
// stands if a mail cannot be sent.
func (h *Handler) mailLinked(c *gin.Context, a, b store.User) {
	if h.Mail == nil {
		return
	}
	group, err := h.Store.IdentityGroup(c.Request.Context(), a.ID)
	if err != nil {
		web.Log(c).Warn("account: linked mail", "err", err)
		return
	}
	text := email.LinkedText(identityOf(a, false).Name, identityOf(b, false).Name, h.Now(), h.BaseURL+"/account#identities")
	for _, m := range group {
		if m.Email == "" || m.IsSuspended() {
			continue
		}
		if err := h.Mail.Send(c.Request.Context(), mailer.Message{To: m.Email, Subject: "Sign-in identities linked", Text: text}); err != nil {
			web.Log(c).Warn("account: linked mail not sent", "err", err)
		}
	}
}

// declineLink drops the offer ("Not me").
func (h *Handler) declineLink(c *gin.Context) {
	h.forgetOffer(c)
	web.Redirect(c, "/account")
}

func (h *Handler) forgetOffer(c *gin.Context) {
	if hash, ok := web.SessionHash(c); ok {
		if err := h.Store.ForgetLinkOffer(c.Request.Context(), hash); err != nil {
			web.Log(c).Warn("account: forget link offer", "err", err)
		}
	}
}

// unlinkIdentity takes another identity out of this account; it is a separate account
// again, with what it holds. An identity that is not linked here is 404.
func (h *Handler) unlinkIdentity(c *gin.Context) {
	u, _ := web.CurrentUser(c)
	if !h.trusted(u) { // it manages nothing of the group (person)
		web.NotFound(c)
		return
	}
	err := h.Store.UnlinkIdentity(c.Request.Context(), u.ID, c.Param("id"), store.AuditEntry{
		ActorID: u.ID, ActorEmail: u.Email, IP: c.ClientIP(), At: h.Now()})
	if err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/account")
}
