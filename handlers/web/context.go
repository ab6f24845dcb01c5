package web

import (
	"log/slog"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/store"
)

type ctxKey int

const (
	keyUser ctxKey = iota
	keyLog
	keyRequestID
	keySessionHash
	keyBaseLog // the logger RequestLog was built with
	keyQuiet   // QuietRequest was called
	keySessionStarted
)

// CurrentUser returns the signed-in user of the request, if any.
func CurrentUser(c *gin.Context) (store.User, bool) {
	u, ok := get[store.User](c, keyUser)
	return u, ok
}

func setUser(c *gin.Context, u store.User) { c.Set(keyUser, u) }

// SessionStarted returns when the signed-in user signed in on this browser: the start
// of the session, which gets a new ID at every sign-in (OpenID Connect auth_time).
func SessionStarted(c *gin.Context) (time.Time, bool) {
	return get[time.Time](c, keySessionStarted)
}

// Log returns the request's logger, carrying its request ID.
func Log(c *gin.Context) *slog.Logger {
	if l, ok := get[*slog.Logger](c, keyLog); ok {
		return l
	}
	if base, ok := get[*slog.Logger](c, keyBaseLog); ok {
		// Built on first use: most requests never log beyond their request line.
		l := base.With("request_id", RequestID(c))
		c.Set(keyLog, l)
		return l
	}
	return slog.Default()
}

// RequestID returns the ID the request is logged under.
func RequestID(c *gin.Context) string {
	id, _ := get[string](c, keyRequestID)
	return id
}

// get reads a typed value that middleware stored with c.Set. (gin's c.Value only
// consults c.Keys for string keys, and ours are unexported typed keys.)
func get[T any](c *gin.Context, key ctxKey) (T, bool) {
	v, ok := c.Get(key)
	if !ok {
		var zero T
		return zero, false
	}
	t, ok := v.(T)
	return t, ok
}

// SessionHash returns the hash of the browser session's ID, which outbound
// authorization requests are bound to (Connections: state of another session fails).
func SessionHash(c *gin.Context) ([]byte, bool) {
	return get[[]byte](c, keySessionHash)
}
