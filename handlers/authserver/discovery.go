package authserver

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
)

// Cache lifetimes of the public documents. Discovery changes only with a new release;
// the JWKS changes at a key rotation, and verifiers refetch it when they meet an unknown
// kid, so five minutes costs nothing in correctness.
const (
	discoveryCacheControl = "public, max-age=3600"
	jwksCacheControl      = "public, max-age=300"
)

// documents holds the bytes of the discovery document and the JWKS, rebuilt only when
// the key set changes (the ID-token algorithm is part of discovery).
type documents struct {
	issuer string
	cur    atomic.Pointer[docSet]
}

type docSet struct {
	keySet    *oauth.KeySet
	discovery []byte
	jwks      []byte
	jwksETag  string
}

func (d *documents) get(h *Handler) *docSet {
	ks := h.keys.KeySet()
	if cur := d.cur.Load(); cur != nil && cur.keySet == ks {
		return cur
	}
	disc, err := json.Marshal(oauth.NewServerMetadata(d.issuer, h.keys.IDTokenAlg()))
	if err != nil {
		panic("oauth: discovery document: " + err.Error()) // a fixed struct of strings always encodes
	}
	jwks := ks.JWKS()
	sum := sha256.Sum256(jwks)
	set := &docSet{keySet: ks, discovery: append(disc, '\n'), jwks: jwks, jwksETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
	d.cur.Store(set)
	return set
}

// discovery serves the metadata at both well-known URLs (RFC 8414 §3, OpenID Connect
// Discovery §4): the same bytes, issuer exactly AUTHGPTS_BASE_URL.
func (h *Handler) discovery(c *gin.Context) {
	d := h.docs.get(h)
	c.Header("Cache-Control", discoveryCacheControl)
	c.Data(http.StatusOK, "application/json", d.discovery)
}

// jwks serves the public keys (RFC 7517 §5): active keys and retired keys until every
// token they signed has expired.
func (h *Handler) jwks(c *gin.Context) {
	d := h.docs.get(h)
	c.Header("Cache-Control", jwksCacheControl)
	c.Header("ETag", d.jwksETag)
	if c.GetHeader("If-None-Match") == d.jwksETag {
		c.Status(http.StatusNotModified)
		return
	}
	c.Data(http.StatusOK, "application/json", d.jwks)
}
