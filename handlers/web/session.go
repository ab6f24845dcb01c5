package web

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/gorilla/sessions"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

const (
	sessionCookie   = "authgpts_session"
	sessionIDKey    = "sid"
	sessionLifetime = 30 * 24 * time.Hour
)

// Sessions keeps signed-in sessions in PostgreSQL behind a gorilla/sessions cookie that
// holds only a random session ID (signed and encrypted). The database stores a keyed
// hash of that ID, so deleting the row signs the browser out everywhere it is used.
type Sessions struct {
	store   *store.Store
	cookies *sessions.CookieStore
	hasher  oauth.Hasher
	now     func() time.Time
}

// NewSessions keys the cookies and the session-ID hashes with the instance's derived keys.
func NewSessions(s *store.Store, keys oauth.DerivedKeys, secure bool, now func() time.Time) *Sessions {
	cs := sessions.NewCookieStore(keys.SessionHash, keys.SessionBlock)
	cs.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(sessionLifetime / time.Second),
		HttpOnly: true,
		Secure:   secure,
		SameSite: http.SameSiteLaxMode,
	}
	return &Sessions{store: s, cookies: cs, hasher: keys.TokenHash, now: now}
}

// Load puts the signed-in user, if any, in the request context. A cookie that does not
// decode, or names an ended session, simply means "not signed in"; a database that
// cannot be reached is a 503 page, never a silent sign-out.
func (s *Sessions) Load() gin.HandlerFunc {
	return func(c *gin.Context) {
		sess, err := s.cookies.Get(c.Request, sessionCookie)
		if err == nil {
			if sid, ok := sess.Values[sessionIDKey].(string); ok && sid != "" {
				hash := s.hasher.Hash(sid)
				u, started, err := s.store.SessionUser(c.Request.Context(), hash, s.now())
				switch {
				case err == nil && !u.IsSuspended():
					setUser(c, u)
					c.Set(keySessionHash, hash)
					c.Set(keySessionStarted, started)
				case errors.Is(err, store.ErrUnavailable):
					// Not "signed out": the session can't be read right now. Answering
					// as a visitor would send a signed-in user to /login.
					Fail(c, err)
					return
				case err != nil && !errors.Is(err, store.ErrNotFound):
					Log(c).Error("load session", "err", err)
				}
			}
		}
		c.Next()
	}
}

// SignIn starts a new session for u. Any previous session of this browser is deleted
// first, so the ID always changes at sign-in (no session fixation).
func (s *Sessions) SignIn(c *gin.Context, u store.User) error {
	ctx := c.Request.Context()
	var replaced store.EndedSession
	if old, ok := get[[]byte](c, keySessionHash); ok {
		var err error
		if replaced, err = s.store.EndSession(ctx, old); err != nil {
			return err
		}
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	sid := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	n := store.NewSession{
		IDHash:    s.hasher.Hash(sid),
		UserID:    u.ID,
		IP:        c.ClientIP(),
		UserAgent: headerText(c.Request.UserAgent(), 256),
		ExpiresAt: now.Add(sessionLifetime),
	}
	// An identity that asked to link another, replaced by another identity's sign-in in
	// the same browser: the proof that links them (handlers/account) is handed on.
	if replaced.LinkIntentAt != nil && replaced.UserID != u.ID {
		n.LinkFromUserID, n.LinkFromAt = replaced.UserID, replaced.LinkIntentAt
	}
	err := s.store.CreateSession(ctx, n, now)
	if err != nil {
		return err
	}
	sess := sessions.NewSession(s.cookies, sessionCookie)
	sess.Options = s.cookies.Options
	sess.IsNew = true
	sess.Values[sessionIDKey] = sid
	if err := s.cookies.Save(c.Request, c.Writer, sess); err != nil {
		return err
	}
	setUser(c, u)
	c.Set(keySessionStarted, now)
	return nil
}

// SignOut deletes the session row and clears the cookie.
func (s *Sessions) SignOut(c *gin.Context) error {
	if hash, ok := get[[]byte](c, keySessionHash); ok {
		if err := s.store.DeleteSession(c.Request.Context(), hash); err != nil {
			return err
		}
	}
	opts := *s.cookies.Options
	opts.MaxAge = -1
	http.SetCookie(c.Writer, sessions.NewCookie(sessionCookie, "", &opts))
	return nil
}

// RequireUser sends visitors who are not signed in to /login, with a return_to that
// brings them back to the page they asked for.
func RequireUser() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, ok := CurrentUser(c); ok {
			c.Next()
			return
		}
		if c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead {
			Error(c, http.StatusUnauthorized, "Your session has ended.", "Sign in again, then retry.")
			return
		}
		Redirect(c, "/login?return_to="+url.QueryEscape(c.Request.URL.RequestURI()))
	}
}

// RequireAdmin answers 404 to everyone but admins, so the console's existence is not
// revealed.
func RequireAdmin() gin.HandlerFunc {
	return func(c *gin.Context) {
		if u, ok := CurrentUser(c); ok && u.IsAdmin {
			c.Next()
			return
		}
		NotFound(c)
	}
}

// headerText makes a header value storable text: invalid UTF-8 (headers may carry any
// byte) and control characters become U+FFFD, and it is cut to n bytes at a character
// boundary, never inside one.
func headerText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
