package web

import (
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
)

// MaxURIBytes bounds the request target (path and query), as front proxies commonly do
// (nginx's default buffers hold 8 KiB). Nothing of ours needs more, and a longer one is
// answered 414 before any handler, session lookup or query runs.
const MaxURIBytes = 8 << 10

// Messages for request text the server does not accept (oauth.ValidText).
const (
	msgInvalidText  = "The request holds characters we cannot accept."
	hintInvalidText = "Remove control characters or invalid bytes from what you typed or pasted, and try again."
)

// Edge checks what every request carries before routing: a request target longer than
// MaxURIBytes is 414, a path that is not valid text (oauth.ValidText: invalid UTF-8, NUL
// or other control characters) names nothing and is 404, and a query parameter that is
// not valid text is 400. The machine endpoints answer in RFC 6749 JSON, pages with an
// error page (or {"detail":…} for HTMX). The gateway's paths and queries below
// /gw/<slug> are the upstream API's and go through untouched (its slug is checked
// where it is looked up).
func Edge(secure bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		if len(r.RequestURI) > MaxURIBytes || len(r.URL.RawQuery) > MaxURIBytes || len(r.URL.Path) > MaxURIBytes {
			refuse(c, secure, http.StatusRequestURITooLong, oauth.ErrInvalidRequest.WithDescription("The request URI is too long."),
				"The address is too long.", "Check the link you followed.")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/gw/") {
			c.Next()
			return
		}
		if !oauth.ValidText(r.URL.Path) {
			refuse(c, secure, http.StatusNotFound, oauth.Error{Code: "not_found", Description: "Nothing is published at this address.", Status: http.StatusNotFound},
				"There is nothing here.", "Check the address, or go back to your dashboard.")
			return
		}
		if name, bad := oauth.InvalidParam(r.URL.Query()); bad {
			refuse(c, secure, http.StatusBadRequest, invalidParamError(name), msgInvalidText, hintInvalidText)
			return
		}
		c.Next()
	}
}

// ValidForm parses a browser form body (application/x-www-form-urlencoded, within the
// LimitBody cap) and answers 400 when a field is not valid text, so that no handler
// sees, and no query stores, a NUL byte or invalid UTF-8. A body that cannot be parsed
// is answered as ParseForm answers it.
func ValidForm() gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-www-form-urlencoded" || (r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch) {
			c.Next()
			return
		}
		if !ParseForm(c) {
			return
		}
		if _, bad := oauth.InvalidParam(r.PostForm); bad {
			BadRequest(c, msgInvalidText, hintInvalidText)
			return
		}
		c.Next()
	}
}

// invalidParamError is the RFC 6749 answer for a parameter that is not valid text:
// invalid_client when it identifies the client, invalid_request otherwise.
func invalidParamError(name string) oauth.Error {
	if name == "client_id" {
		return oauth.ErrInvalidClient.WithDescription("The client_id parameter holds characters that are not accepted.")
	}
	return oauth.ErrInvalidRequest.WithDescription("A parameter is too long or holds characters that are not accepted.")
}

// refuse answers an edge check: JSON for the machine endpoints, a page otherwise.
func refuse(c *gin.Context, secure bool, status int, machine oauth.Error, message, hint string) {
	if IsMachinePath(c.Request.URL.Path) {
		machine.Status = status
		oauth.WriteError(c.Writer, machine, false, Log(c))
		c.Abort()
		return
	}
	setSecurityHeaders(c.Writer.Header(), secure)
	Error(c, status, message, hint)
}

// IsMachinePath reports whether a path belongs to clients that parse every answer as
// JSON: the OAuth endpoints other than the two pages (authorize and consent), the
// well-known documents and the gateway.
func IsMachinePath(p string) bool {
	switch {
	case p == oauth.PathAuthorize || p == "/oauth/consent":
		return false
	case strings.HasPrefix(p, "/oauth/"), strings.HasPrefix(p, "/.well-known/"), strings.HasPrefix(p, "/gw/"):
		return true
	}
	return false
}
