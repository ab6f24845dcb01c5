// Package ginresource adapts oauth/resource to Gin.
//
//	r.GET("/notes", ginresource.Require(v, "notes.read"), func(c *gin.Context) {
//		claims, _ := ginresource.Claims(c)
//		c.JSON(200, gin.H{"user": claims.Subject})
//	})
package ginresource

import (
	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth/resource"
)

const claimsKey = "authgpts.claims"

// Require aborts with an RFC 6750 error unless the request carries a valid access token
// with every scope given; the claims are then in Claims(c) and in the request context.
func Require(v *resource.Verifier, scopes ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		claims, err := v.Authenticate(c.Request, scopes...)
		accept(c, v, claims, err)
	}
}

// RequireGateway aborts unless the request carries a valid AuthGPTs gateway assertion for
// upstream (this API's base URL as set in the portal) with every scope given.
func RequireGateway(v *resource.Verifier, upstream string, scopes ...string) gin.HandlerFunc {
	return func(c *gin.Context) {
		claims, err := v.AuthenticateGateway(c.Request, upstream, scopes...)
		accept(c, v, claims, err)
	}
}

func accept(c *gin.Context, v *resource.Verifier, claims resource.Claims, err error) {
	if err != nil {
		v.WriteError(c.Writer, err)
		c.Abort()
		return
	}
	c.Set(claimsKey, claims)
	c.Request = c.Request.WithContext(resource.WithClaims(c.Request.Context(), claims))
	c.Next()
}

// Claims returns the caller that Require or RequireGateway verified.
func Claims(c *gin.Context) (resource.Claims, bool) {
	v, ok := c.Get(claimsKey)
	if !ok {
		return resource.Claims{}, false
	}
	claims, ok := v.(resource.Claims)
	return claims, ok
}
