package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// TestConnectionsRotateKey_CLI: every sealed value moves to the new generation, opens
// under it and no longer under the old one.
func TestConnectionsRotateKey_CLI(t *testing.T) {
	dsn := storetest.NewDSN(t)
	secret := strings.Repeat("k", 40)
	vars := map[string]string{"DATABASE_URL": dsn, "AUTHGPTS_SECRET": secret}
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	vault := oauth.DeriveKeys([]byte(secret)).Vault
	owner, _ := st.EnsureUser(ctx, "dev@example.com")
	user, _ := st.EnsureUser(ctx, "user@example.com")
	app, _, err := st.CreateApp(ctx, store.NewApp{OwnerID: owner.ID, Name: "Vault", Client: store.NewClient{ID: oauth.NewClientID(),
		Name: "c", Kind: store.ClientKindPublic, RedirectURIs: []string{"https://example.com/cb"}}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	p := store.ConnectionProvider{ID: store.NewRowID(), AppID: app.ID, Provider: "acme", Preset: "generic", DisplayName: "Acme",
		AuthorizeURL: "https://acme.example/authorize", TokenURL: "https://acme.example/token", ClientID: "id", KeyID: 1,
		AuthStyle: store.AuthStyleBody, Delivery: store.DeliveryHeader, CreatedAt: time.Now()}
	p.ClientSecretSealed, _ = vault.Seal(1, []byte("provider-secret"), p.ID, store.FieldClientSecret)
	if err := st.CreateConnectionProvider(ctx, owner.ID, p); err != nil {
		t.Fatal(err)
	}
	l := store.LinkedAccount{ID: store.NewRowID(), ProviderID: p.ID, UserID: user.ID, KeyID: 1}
	l.AccessSealed, _ = vault.Seal(1, []byte("access-1"), l.ID, store.FieldAccess)
	l.RefreshSealed, _ = vault.Seal(1, []byte("refresh-1"), l.ID, store.FieldRefresh)
	if err := st.SaveLinkedAccount(ctx, l, time.Now()); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	if err := run(ctx, []string{"connections", "rotate-key"}, env(vars), &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("connections rotate-key: %v", err)
	}
	var res struct {
		KeyID    int `json:"key_id"`
		Resealed int `json:"resealed"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil || res.KeyID != 2 || res.Resealed != 2 {
		t.Fatalf("output = %s (%v), want key 2 and 2 rows", out.String(), err)
	}
	gotP, _ := st.ConnectionProviderByID(ctx, p.ID)
	gotL, _ := st.LinkedAccountByID(ctx, l.ID)
	if gotP.KeyID != 2 || gotL.KeyID != 2 {
		t.Fatalf("key IDs after rotation: provider %d, account %d; want 2", gotP.KeyID, gotL.KeyID)
	}
	for _, v := range []struct {
		sealed     []byte
		row, field string
		want       string
	}{{gotP.ClientSecretSealed, p.ID, store.FieldClientSecret, "provider-secret"}, {gotL.AccessSealed, l.ID, store.FieldAccess, "access-1"},
		{gotL.RefreshSealed, l.ID, store.FieldRefresh, "refresh-1"}} {
		if plain, err := vault.Open(2, v.sealed, v.row, v.field); err != nil || string(plain) != v.want {
			t.Errorf("Open(2, %s) = %q, %v; want %q", v.field, plain, err, v.want)
		}
		if _, err := vault.Open(1, v.sealed, v.row, v.field); !errors.Is(err, oauth.ErrVaultOpen) {
			t.Errorf("the retired generation still opens %s", v.field)
		}
	}
	if n, _ := st.SealedBelowVaultKey(ctx, 2); n != 0 {
		t.Errorf("%d values still under an old key", n)
	}
	if err := run(ctx, []string{"connections", "spin"}, env(vars), &bytes.Buffer{}, &bytes.Buffer{}); !errors.Is(err, errUsage) {
		t.Errorf("connections spin = %v, want a usage error", err)
	}
	// A second rotation with a wrong secret changes nothing.
	bad := map[string]string{"DATABASE_URL": dsn, "AUTHGPTS_SECRET": strings.Repeat("x", 40)}
	if err := run(ctx, []string{"connections", "rotate-key"}, env(bad), &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("rotation with another AUTHGPTS_SECRET succeeded")
	}
	if id, _ := st.VaultKeyID(ctx); id != 2 {
		t.Errorf("vault key after a failed rotation = %d, want 2", id)
	}
}
