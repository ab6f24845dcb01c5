package web

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
)

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

// RequestLog gives every request an ID (kept from X-Request-ID when well-formed), a
// logger carrying it, and one log line when it ends. Only the path is logged, never the
// query string, which may hold codes, states or tokens.
func RequestLog(base *slog.Logger) gin.HandlerFunc {
	base = CapLog(base) // a path may be 8 KiB long; every logged value is bounded
	return func(c *gin.Context) {
		start := time.Now()
		id := c.GetHeader("X-Request-ID")
		if !validRequestID.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		c.Header("X-Request-ID", id)
		c.Set(keyRequestID, id)
		c.Set(keyBaseLog, base) // Log(c) adds the request ID when a handler first logs
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		if quiet, _ := get[bool](c, keyQuiet); quiet {
			level = slog.LevelDebug
		}
		if status >= 500 {
			level = slog.LevelError
		}
		if !base.Enabled(c.Request.Context(), level) {
			return
		}
		base.LogAttrs(c.Request.Context(), level, "request",
			slog.String("request_id", id),
			slog.String("method", c.Request.Method),
			slog.String("path", c.Request.URL.Path),
			slog.Int("status", status),
			slog.Duration("duration", time.Since(start)),
			slog.Int("bytes", c.Writer.Size()),
		)
	}
}

// QuietRequest logs the request's line at debug level rather than info, unless it
// fails with a 5xx: for high-volume machine routes that keep their own record of every
// call (the gateway's usage events), where a log line per call costs more than the call.
func QuietRequest(c *gin.Context) { c.Set(keyQuiet, true) }

// Recover turns a panic into a logged 500 with a generic message.
func Recover() gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				Log(c).Error("panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				if !c.Writer.Written() {
					c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"detail": gin.H{"message": "Something went wrong on our side.", "hint": "Try again; if it keeps failing, quote request ID " + RequestID(c) + "."}})
				}
				c.Abort()
			}
		}()
		c.Next()
	}
}

// contentSecurityPolicy allows only our own scripts and styles: htmx is configured not to
// inject inline styles or evaluate code, so no 'unsafe-*' source is needed. form-action is
// left out on purpose: Chromium applies it to the redirect that follows the consent POST,
// which must reach the client's callback.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// SecurityHeaders sets the page headers of DESIGN.md on every response. No page of ours
// is meant to be framed, so framing is denied everywhere (login and consent included).
func SecurityHeaders(secure bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		setSecurityHeaders(c.Writer.Header(), secure)
		c.Next()
	}
}

func setSecurityHeaders(h http.Header, secure bool) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if secure {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
}

// MaxFormBytes is the largest request body a browser form may send.
const MaxFormBytes = 64 << 10

// LimitBody caps the request body; reading past the cap fails with *http.MaxBytesError.
func LimitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		}
		c.Next()
	}
}

// SameOrigin refuses cross-origin state-changing requests on browser routes, using the
// standard library's Sec-Fetch-Site / Origin check (CSRF protection without tokens).
func SameOrigin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		if err := cop.Check(c.Request); err != nil {
			Forbidden(c, "This request came from another site and was refused.", "Open the page on this site and submit the form again.")
			return
		}
		c.Next()
	}
}

// ParseForm parses a form body, answering 413 or 400 itself when it can't. It reports
// whether the handler may go on.
func ParseForm(c *gin.Context) bool {
	if err := c.Request.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			Error(c, http.StatusRequestEntityTooLarge, "The form is too large.", "Shorten what you typed and try again.")
			return false
		}
		BadRequest(c, "The form could not be read.", "Reload the page and try again.")
		return false
	}
	return true
}
