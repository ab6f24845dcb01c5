package authserver

import (
	"context"
	"sync"
	"time"

	"github.com/authgpts/authgpts/oauth"
)

// maxVerifiedTokens bounds the verified-token cache (about 1 KiB an entry).
const maxVerifiedTokens = 20_000

// verifiedTokens remembers access tokens whose signature was verified, so that a resource
// server introspecting the same token on every call pays for one ES256 verification
// (~100 µs), not one per call. An entry is used only with the key set it was verified
// under (a rotation or reload re-verifies) and only until the token's expiry; revocation
// and client state are checked on every use, outside this cache.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	keySet *oauth.KeySet
	claims oauth.AccessClaims
}

// verifyAccessToken verifies token (signature, typ, issuer, expiry) using the cache.
func (h *Handler) verifyAccessToken(ctx context.Context, token string, now time.Time) (oauth.AccessClaims, error) {
	ks := h.keys.KeySet()
	h.verified.mu.RLock()
	v, ok := h.verified.m[token]
	h.verified.mu.RUnlock()
	if ok && v.keySet == ks && now.Before(v.claims.Expiry) {
		return v.claims, nil
	}
	claims, err := h.keys.VerifyAccessToken(ctx, token, now, h.issuer)
	if err != nil {
		return claims, err
	}
	h.verified.mu.Lock()
	if h.verified.m == nil || len(h.verified.m) >= maxVerifiedTokens {
		h.verified.m = make(map[string]verifiedToken)
	}
	h.verified.m[token] = verifiedToken{keySet: h.keys.KeySet(), claims: claims}
	h.verified.mu.Unlock()
	return claims, nil
}
