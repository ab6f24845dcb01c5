package signin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/oauth/upstream"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/emailcode"
	"github.com/authgpts/authgpts/views/email"
	"github.com/authgpts/authgpts/views/email/mailer"
	"github.com/authgpts/authgpts/views/signin"
)

// Handler serves the sign-in pages.
type Handler struct {
	Store       *store.Store
	Sessions    *web.Sessions
	Codes       *emailcode.Codes
	DevMailbox  *mailer.DevMailbox // nil outside development
	AdminEmails []string
	Now         func() time.Time
	// Upstream signs people in through identity sources (apps' providers and the
	// portal's AUTHGPTS_LOGIN_* providers); nil: email code only.
	Upstream *Upstream
}

// Register mounts the routes on a browser group (cross-origin protected, body-limited).
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/login", h.emailPage("login"))
	r.GET("/signup", h.emailPage("signup"))
	r.POST("/login", h.sendCode)
	r.POST("/login/verify", h.verifyCode)
	r.POST("/logout", h.logout)
	if h.Upstream != nil {
		r.GET(PathUpstreamStart, h.Upstream.start)
		r.GET(upstream.CallbackPath, h.Upstream.callback)
		r.GET(upstream.OwnCallbackPath, h.Upstream.ownCallback)
	}
	if h.DevMailbox != nil {
		r.GET("/dev/mail", h.devMail)
	}
}

func (h *Handler) emailPage(mode string) gin.HandlerFunc {
	return func(c *gin.Context) {
		returnTo := web.SafeReturnTo(c.Query("return_to"), "")
		if _, ok := web.CurrentUser(c); ok && c.Query("reauth") == "" {
			web.Redirect(c, orDashboard(returnTo))
			return
		}
		vm := signin.EmailVM{Mode: mode, ReturnTo: returnTo, Providers: h.portalProviders(returnTo)}
		if c.Query("deleted") != "" {
			vm.Notice = "Your account was deleted. You can create a new one at any time."
		}
		web.Render(c, http.StatusOK, signin.EmailPage(vm))
	}
}

func (h *Handler) sendCode(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	mode := c.PostForm("mode")
	returnTo := web.SafeReturnTo(c.PostForm("return_to"), "")
	addr, ok := store.NormalizeEmail(c.PostForm("email"))
	if !ok {
		web.Render(c, http.StatusUnprocessableEntity, signin.EmailPage(signin.EmailVM{
			Mode: mode, Email: c.PostForm("email"), ReturnTo: returnTo,
			Error: "Enter a valid email address, like name@example.com.",
		}))
		return
	}
	verdict, err := h.Codes.Send(c.Request.Context(), addr, c.ClientIP(), emailcode.SignIn)
	vm := signin.CodeVM{Email: addr, ReturnTo: returnTo, DevMailURL: h.devMailURL()}
	switch {
	case errors.Is(err, emailcode.ErrNotSent):
		web.Log(c).Error("send sign-in code", "err", err)
		web.Render(c, http.StatusServiceUnavailable, signin.EmailPage(signin.EmailVM{
			Mode: mode, Email: addr, ReturnTo: returnTo,
			Error: "We could not send the email just now. Try again in a minute.",
		}))
		return
	case err != nil:
		web.Fail(c, err)
		return
	case !verdict.Allowed:
		// The same answer whether or not an account exists: throttles are per email and IP.
		c.Header("Retry-After", fmt.Sprint(int(verdict.RetryAfter.Seconds()+0.5)))
		vm.Notice = throttleNotice(verdict)
		web.Render(c, http.StatusTooManyRequests, signin.CodePage(vm))
		return
	}
	web.Render(c, http.StatusOK, signin.CodePage(vm))
}

var errSuspended = errors.New("signin: account suspended")

func (h *Handler) verifyCode(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	returnTo := web.SafeReturnTo(c.PostForm("return_to"), "")
	addr, ok := store.NormalizeEmail(c.PostForm("email"))
	if !ok {
		web.Render(c, http.StatusUnprocessableEntity, signin.EmailPage(signin.EmailVM{
			Mode: "login", ReturnTo: returnTo, Error: "Enter your email address again to get a new code.",
		}))
		return
	}
	vm := signin.CodeVM{Email: addr, ReturnTo: returnTo, DevMailURL: h.devMailURL()}
	code, ok := emailcode.ParseCode(c.PostForm("code"))
	if !ok {
		vm.Error = "Enter the 6 digits from the email."
		web.Render(c, http.StatusUnprocessableEntity, signin.CodePage(vm))
		return
	}
	ctx := c.Request.Context()
	now := h.Now()
	valid, err := h.Codes.Check(ctx, addr, emailcode.SignIn, code)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if !valid {
		vm.Error = "That code is wrong or has expired. Check the latest email, or send a new code."
		web.Render(c, http.StatusUnprocessableEntity, signin.CodePage(vm))
		return
	}
	var user store.User
	err = h.Store.InTx(ctx, func(tx *store.Tx) error {
		u, created, err := tx.SignInUser(ctx, addr, slices.Contains(h.AdminEmails, addr), now)
		if err != nil {
			return err
		}
		user = u
		if u.IsSuspended() {
			return errSuspended // roll back: a refused sign-in records nothing
		}
		action := "user.signed_in"
		if created {
			action = "user.signed_up"
		}
		return tx.Audit(ctx, store.AuditEntry{At: now, ActorID: u.ID, ActorEmail: u.Email, Action: action, TargetType: "user", TargetID: u.ID, IP: c.ClientIP()})
	})
	if errors.Is(err, errSuspended) {
		web.Forbidden(c, "This account is suspended.", "Contact the operator of this service if you think this is a mistake.")
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	if err := h.Sessions.SignIn(c, user); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, orDashboard(returnTo))
}

func (h *Handler) logout(c *gin.Context) {
	if err := h.Sessions.SignOut(c); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, "/login")
}

// portalProviders are the operator's upstream sign-in buttons. They are for the portal
// only: an authorization request is answered by the app's own identity source, so an
// end user is never offered an identity the app would not accept.
func (h *Handler) portalProviders(returnTo string) []signin.ProviderLink {
	if h.Upstream == nil || strings.HasPrefix(returnTo, "/oauth/") {
		return nil
	}
	back := ""
	if returnTo != "" {
		back = "&return_to=" + url.QueryEscape(returnTo)
	}
	var out []signin.ProviderLink
	if p := h.Upstream.PortalOIDC; p != nil {
		label := "Continue with single sign-on"
		if u, err := url.Parse(p.Issuer); err == nil && u.Host != "" {
			label = "Continue with " + u.Host
		}
		out = append(out, signin.ProviderLink{Label: label, URL: PathUpstreamStart + "?provider=" + ProviderPortalOIDC + back})
	}
	if h.Upstream.PortalGitHub != nil {
		out = append(out, signin.ProviderLink{Label: "Continue with GitHub", URL: PathUpstreamStart + "?provider=" + ProviderPortalGitHub + back})
	}
	return out
}

func (h *Handler) devMail(c *gin.Context) {
	web.Render(c, http.StatusOK, email.DevMailbox(h.DevMailbox.Messages()))
}

func (h *Handler) devMailURL() string {
	if h.DevMailbox == nil {
		return ""
	}
	return "/dev/mail"
}

func throttleNotice(v store.OTPSendVerdict) string {
	if v.Reason == "resend" {
		return fmt.Sprintf("A code was sent moments ago. You can ask for a new one in %d seconds; the last code still works.", int(v.RetryAfter.Seconds()+0.5))
	}
	return "Too many codes were requested. Wait a few minutes before asking for another."
}

func orDashboard(returnTo string) string {
	if returnTo == "" {
		return "/dashboard"
	}
	return returnTo
}
