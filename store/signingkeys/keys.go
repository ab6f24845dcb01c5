// Package signingkeys is the signing-key manager (Keys) that every surface signing or
// verifying tokens shares.
//
// Keys loads the signing keys from the database (sealed under a key derived from
// AUTHGPTS_SECRET), generates them on first start, and holds an immutable *oauth.KeySet
// that is swapped atomically when keys change, so the hot path (KeySet) never touches the
// database. Two keys are active: ES256 signs access tokens, RS256 signs ID tokens and
// gateway assertions (see oauth.NewSplitKeySet for why). Rotation retires a key with
// verify_until = now + the longest token lifetime; it stays in the JWKS until then. Other
// instances learn of a rotation by NOTIFY on store.KeysChannel, and, should that be
// missed, by reloading when a token names an unknown kid (at most every 10 s).
package signingkeys

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
)

// Algorithms: access tokens are signed with AccessTokenAlg when such a key is active,
// ID tokens with IDTokenAlg.
const (
	AccessTokenAlg = oauth.AlgES256
	IDTokenAlg     = oauth.AlgRS256
)

// missReloadInterval bounds how often an unknown kid may trigger a database reload.
const missReloadInterval = 10 * time.Second

// Keys is the signing-key manager. It is safe for concurrent use.
type Keys struct {
	store *store.Store
	kek   []byte
	now   func() time.Time
	log   *slog.Logger

	cur        atomic.Pointer[keyState]
	reloadMu   sync.Mutex
	lastMissAt atomic.Int64 // unix nanoseconds of the last reload caused by an unknown kid
}

type keyState struct {
	set        *oauth.KeySet
	idTokenAlg string
}

// NewKeys loads the signing keys, first generating an active RS256 and ES256 key when
// there is none (first start; concurrent instances agree on one through the
// one-active-key-per-algorithm index). kek is the key-encryption key (DerivedKeys.KeyEncryption).
func NewKeys(ctx context.Context, st *store.Store, kek []byte, now func() time.Time, log *slog.Logger) (*Keys, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	k := &Keys{store: st, kek: kek, now: now, log: log}
	if err := k.ensureActive(ctx); err != nil {
		return nil, err
	}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// KeySet returns the current key set. It never touches the database.
func (k *Keys) KeySet() *oauth.KeySet { return k.cur.Load().set }

// IDTokenAlg returns the algorithm ID tokens are signed with.
func (k *Keys) IDTokenAlg() string { return k.cur.Load().idTokenAlg }

// ensureActive generates and stores an active key for each algorithm that has none.
func (k *Keys) ensureActive(ctx context.Context) error {
	rows, err := k.store.UsableSigningKeys(ctx, k.now())
	if err != nil {
		return err
	}
	for _, alg := range []string{IDTokenAlg, AccessTokenAlg} {
		if slices.ContainsFunc(rows, func(r store.SigningKeyRow) bool { return r.IsActive() && r.Alg == alg }) {
			continue
		}
		row, err := k.newKeyRow(alg)
		if err != nil {
			return err
		}
		stored, err := k.store.InsertActiveKeyIfNone(ctx, row)
		if err != nil {
			return err
		}
		if stored {
			k.log.Info("generated signing key", "kid", row.ID, "alg", alg)
		}
	}
	return nil
}

func (k *Keys) newKeyRow(alg string) (store.SigningKeyRow, error) {
	key, err := oauth.GenerateKey(alg)
	if err != nil {
		return store.SigningKeyRow{}, err
	}
	sealed, err := oauth.SealKey(k.kek, key)
	if err != nil {
		return store.SigningKeyRow{}, err
	}
	return store.SigningKeyRow{ID: key.ID, Alg: alg, Sealed: sealed, CreatedAt: k.now().UTC()}, nil
}

// Reload reads the usable keys from the database and swaps in a new key set.
func (k *Keys) Reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	rows, err := k.store.UsableSigningKeys(ctx, k.now())
	if err != nil {
		return err
	}
	var active = map[string]oauth.SigningKey{}
	var others []oauth.SigningKey
	for _, r := range rows {
		key, err := oauth.OpenKey(k.kek, r.ID, r.Alg, r.Sealed)
		if err != nil {
			// A key that does not open means AUTHGPTS_SECRET changed: refuse to go on
			// with a partial set rather than publish a JWKS that misses keys.
			return fmt.Errorf("signingkeys: load signing keys: %w", err)
		}
		key.CreatedAt = r.CreatedAt
		if _, seen := active[r.Alg]; r.IsActive() && !seen {
			active[r.Alg] = key
			continue
		}
		others = append(others, key)
	}
	accessKey, ok := active[AccessTokenAlg]
	if !ok {
		accessKey, ok = active[IDTokenAlg]
	}
	idKey, idOK := active[IDTokenAlg]
	if !idOK {
		idKey, idOK = active[AccessTokenAlg]
	}
	if !ok || !idOK {
		return fmt.Errorf("signingkeys: load signing keys: no active key")
	}
	set, err := oauth.NewSplitKeySet(accessKey, idKey, others...)
	if err != nil {
		return fmt.Errorf("signingkeys: load signing keys: %w", err)
	}
	k.cur.Store(&keyState{set: set, idTokenAlg: idKey.Alg})
	return nil
}

// Rotate retires the active key of alg (RS256 or ES256) and makes a new one active. The
// retired key stays in the JWKS until every token it signed has expired: verify_until is
// now + the longest lifetime of an access token (any app's) or ID token. Other
// instances pick the change up by NOTIFY. It returns the new key's ID.
func (k *Keys) Rotate(ctx context.Context, alg string) (string, error) {
	if alg != oauth.AlgRS256 && alg != oauth.AlgES256 {
		return "", fmt.Errorf("signingkeys: rotate: unsupported algorithm %q (want RS256 or ES256)", alg)
	}
	row, err := k.newKeyRow(alg)
	if err != nil {
		return "", err
	}
	longest, err := k.store.MaxAccessTokenTTL(ctx)
	if err != nil {
		return "", err
	}
	longest = max(longest, oauth.IDTokenTTL)
	verifyUntil := row.CreatedAt.Add(longest + oauth.ClockLeeway)
	retired, err := k.store.RotateSigningKey(ctx, row, verifyUntil)
	if err != nil {
		return "", err
	}
	k.log.Info("rotated signing key", "kid", row.ID, "alg", alg, "retired_kid", retired, "verify_until", verifyUntil)
	return row.ID, k.Reload(ctx)
}

// VerifyAccessToken verifies an access token like oauth.KeySet.VerifyAccessToken, first
// reloading the keys (at most every 10 s) when the token names a key this instance does
// not know: another instance may have rotated and its NOTIFY not arrived yet.
func (k *Keys) VerifyAccessToken(ctx context.Context, token string, now time.Time, issuer string) (oauth.AccessClaims, error) {
	ks := k.KeySet()
	if kid := oauth.TokenKeyID(token); kid != "" && !ks.HasKey(kid) && k.reloadForMiss(ctx) {
		ks = k.KeySet()
	}
	return ks.VerifyAccessToken(token, now, issuer)
}

// reloadForMiss reloads the keys unless that was done less than missReloadInterval ago.
func (k *Keys) reloadForMiss(ctx context.Context) bool {
	last := k.lastMissAt.Load()
	nowNano := k.now().UnixNano()
	if nowNano-last < int64(missReloadInterval) || !k.lastMissAt.CompareAndSwap(last, nowNano) {
		return false
	}
	if err := k.Reload(ctx); err != nil {
		k.log.Error("reload signing keys for an unknown kid", "err", err)
		return false
	}
	return true
}

// Watch keeps the key set current until ctx ends: it reloads on every NOTIFY on
// store.KeysChannel and after a reconnection of l (nil l: no notifications), and every
// 10 minutes, which also drops retired keys whose verify_until has passed.
func (k *Keys) Watch(ctx context.Context, l *notify.Listener) error {
	reload := func() {
		go func() {
			if err := k.Reload(ctx); err != nil && ctx.Err() == nil {
				k.log.Error("reload signing keys", "err", err)
			}
		}()
	}
	if l != nil {
		if err := l.Subscribe(store.KeysChannel, func(string) { reload() }, reload); err != nil {
			return err
		}
	}
	go func() {
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				reload()
			}
		}
	}()
	return nil
}
