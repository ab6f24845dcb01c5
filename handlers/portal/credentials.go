package portal

import (
	"encoding/base64"
	"regexp"
	"strings"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
)

// NewCredentials returns a client to create, with a fresh client ID and, for
// confidential kinds, a fresh secret: the clear secret is returned to show once, the
// client carries only its keyed hash (the token endpoint's hasher) and its hint.
func NewCredentials(h oauth.Hasher, kind string) (store.NewClient, string) {
	nc := store.NewClient{ID: oauth.NewClientID(), Kind: kind}
	if kind == store.ClientKindPublic {
		return nc, ""
	}
	secret := oauth.NewToken(oauth.PrefixClientSecret)
	nc.SecretHash, nc.SecretHint = h.Hash(secret), oauth.SecretHint(secret)
	return nc, secret
}

var plainClientID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)

// ClientRef is the path segment naming a client: its ID when that is made of URL-safe
// characters, else "~" and the base64url of the ID (a client ID from a metadata
// document is an https URL, whose slashes a path segment cannot hold).
func ClientRef(id string) string {
	if plainClientID.MatchString(id) {
		return id
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// parseClientRef undoes ClientRef.
func parseClientRef(ref string) (string, bool) {
	if enc, ok := strings.CutPrefix(ref, "~"); ok {
		b, err := base64.RawURLEncoding.DecodeString(enc)
		if err != nil || len(b) == 0 || plainClientID.Match(b) {
			return "", false
		}
		return string(b), true
	}
	return ref, plainClientID.MatchString(ref)
}
