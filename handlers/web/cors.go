package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// CORS for the machine endpoints (OAuth, discovery, the gateway and its metadata): any
// origin, never credentials (AI-CLIENTS.md M11). Nothing behind them reads cookies, so
// "*" exposes nothing a server-side caller could not fetch. Browser-based clients (MCP
// Inspector, single-page apps) need it.

// Shared, never modified header values: the gateway sets them on every answer, and a
// Header.Set would allocate them per call.
var (
	corsAnyOrigin     = []string{"*"}
	corsExposeHeaders = []string{"WWW-Authenticate, Retry-After, Mcp-Session-Id"}
	corsAllowMethods  = []string{"GET, POST, PUT, PATCH, DELETE, OPTIONS"}
	corsAllowHeaders  = []string{"Authorization, Content-Type, Accept, X-API-Key, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"}
	corsMaxAge        = []string{"600"}
)

// AllowAnyOrigin lets any origin read the answer, unless a CORS header is already set.
func AllowAnyOrigin(h http.Header) {
	if len(h["Access-Control-Allow-Origin"]) == 0 {
		h["Access-Control-Allow-Origin"] = corsAnyOrigin
		h["Access-Control-Expose-Headers"] = corsExposeHeaders
	}
}

// CORS is the middleware form of AllowAnyOrigin.
func CORS(c *gin.Context) {
	AllowAnyOrigin(c.Writer.Header())
	c.Next()
}

// IsPreflight reports whether r is a CORS preflight (Fetch standard §3.2.2).
func IsPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != ""
}

// Preflight answers a CORS preflight of any machine endpoint: 204 with the methods and
// the headers that OAuth, bearer-token and MCP clients send.
func Preflight(c *gin.Context) {
	h := c.Writer.Header()
	AllowAnyOrigin(h)
	h["Access-Control-Allow-Methods"] = corsAllowMethods
	h["Access-Control-Allow-Headers"] = corsAllowHeaders
	h["Access-Control-Max-Age"] = corsMaxAge
	c.AbortWithStatus(http.StatusNoContent)
}
