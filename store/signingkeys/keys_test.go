package signingkeys_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/notify"
	"github.com/authgpts/authgpts/store/signingkeys"
	"github.com/authgpts/authgpts/store/storetest"
)

var kek = oauth.DeriveKeys([]byte("keys-test-secret-keys-test-secret-0123")).KeyEncryption

const issuer = "https://auth.example.com"

func jwksKIDs(t *testing.T, k *signingkeys.Keys) []string {
	t.Helper()
	var doc struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(k.KeySet().JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, key := range doc.Keys {
		ids = append(ids, key.KID)
	}
	slices.Sort(ids)
	return ids
}

func sign(t *testing.T, k *signingkeys.Keys, now time.Time) string {
	t.Helper()
	tok, err := k.KeySet().SignAccessToken(oauth.AccessClaims{Issuer: issuer, Subject: "u", ClientID: "c", JTI: "j",
		Audience: []string{issuer + "/gw/a"}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestKeys_FirstStartGeneratesSealedKeysOnce: the first instance generates an RS256 and
// an ES256 key; concurrent instances end up with the same keys; another secret cannot
// open them.
func TestKeys_FirstStartGeneratesSealedKeysOnce(t *testing.T) {
	st := storetest.NewDB(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	sets := make([][]string, 3)
	for i := range sets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := signingkeys.NewKeys(ctx, st, kek, time.Now, nil)
			if err != nil {
				t.Error(err)
				return
			}
			sets[i] = jwksKIDs(t, k)
		}()
	}
	wg.Wait()
	if len(sets[0]) != 2 || !slices.Equal(sets[0], sets[1]) || !slices.Equal(sets[0], sets[2]) {
		t.Fatalf("instances disagree on the keys: %v", sets)
	}
	rows, _ := st.UsableSigningKeys(ctx, time.Now())
	if len(rows) != 2 {
		t.Fatalf("%d keys stored, want 2", len(rows))
	}
	for _, r := range rows {
		if _, err := oauth.OpenKey(kek, r.ID, r.Alg, r.Sealed); err != nil {
			t.Errorf("key %s does not open with the secret: %v", r.ID, err)
		}
	}
	if _, err := signingkeys.NewKeys(ctx, st, oauth.DeriveKeys([]byte("another-secret-another-secret-0123456")).KeyEncryption, time.Now, nil); err == nil {
		t.Error("keys opened under another AUTHGPTS_SECRET")
	}
	k, _ := signingkeys.NewKeys(ctx, st, kek, time.Now, nil)
	if k.IDTokenAlg() != oauth.AlgRS256 || k.KeySet().Active().Alg != oauth.AlgES256 {
		t.Errorf("ID token alg %s, access token alg %s; want RS256 and ES256", k.IDTokenAlg(), k.KeySet().Active().Alg)
	}
}

// TestKeys_RotateKeepsRetiredKeyUntilVerifyUntil: after a rotation the old key still
// verifies the tokens it signed and stays in the JWKS until every one has expired.
func TestKeys_RotateKeepsRetiredKeyUntilVerifyUntil(t *testing.T) {
	st := storetest.NewDB(t)
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	k, err := signingkeys.NewKeys(ctx, st, kek, clock, nil)
	if err != nil {
		t.Fatal(err)
	}
	old := sign(t, k, now)
	oldKID := k.KeySet().Active().ID
	newKID, err := k.Rotate(ctx, oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	if k.KeySet().Active().ID != newKID || len(jwksKIDs(t, k)) != 3 {
		t.Fatalf("after rotation active %s, JWKS %v; want the new key active and 3 keys", k.KeySet().Active().ID, jwksKIDs(t, k))
	}
	if _, err := k.VerifyAccessToken(ctx, old, now, issuer); err != nil {
		t.Errorf("a token of the retired key no longer verifies: %v", err)
	}
	var verifyUntil time.Time
	if err := st.DB().Get(&verifyUntil, `SELECT verify_until FROM signing_keys WHERE id = $1`, oldKID); err != nil {
		t.Fatal(err)
	}
	if d := verifyUntil.Sub(now); d < oauth.IDTokenTTL {
		t.Errorf("verify_until is %v after the rotation, want at least the longest token lifetime", d)
	}
	now = verifyUntil.Add(time.Second)
	if err := k.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(jwksKIDs(t, k), oldKID) {
		t.Errorf("the retired key is still published after verify_until")
	}
	if _, err := k.Rotate(ctx, "HS256"); err == nil {
		t.Error("rotation to HS256 accepted")
	}
}

// TestKeys_OtherInstanceLearnsRotation: a second instance picks the rotation up by
// NOTIFY; a third without notifications picks it up when it meets the unknown kid.
func TestKeys_OtherInstanceLearnsRotation(t *testing.T) {
	dsn := storetest.NewDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, _ := signingkeys.NewKeys(ctx, st, kek, time.Now, nil)
	b, _ := signingkeys.NewKeys(ctx, st, kek, time.Now, nil)
	c, _ := signingkeys.NewKeys(ctx, st, kek, time.Now, nil)
	l := notify.NewListener(ctx, dsn, nil)
	if err := b.Watch(ctx, l); err != nil {
		t.Fatal(err)
	}
	newKID, err := a.Rotate(ctx, oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for b.KeySet().Active().ID != newKID {
		if time.Now().After(deadline) {
			t.Fatal("instance b never learnt of the rotation")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tok := sign(t, a, time.Now())
	if c.KeySet().HasKey(newKID) {
		t.Fatal("instance c knew the key already")
	}
	if _, err := c.VerifyAccessToken(ctx, tok, time.Now(), issuer); err != nil {
		t.Fatalf("instance c did not reload for the unknown kid: %v", err)
	}
}
