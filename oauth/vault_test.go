package oauth

import (
	"bytes"
	"errors"
	"testing"
)

func TestVault_SealOpen(t *testing.T) {
	v := DeriveKeys([]byte("root-secret-root-secret-root-secret")).Vault
	other := DeriveKeys([]byte("another-root-another-root-another")).Vault
	sealed, err := v.Seal(1, []byte("gho_token"), "row-1", "access")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("gho_token")) {
		t.Fatal("the sealed value holds the plaintext")
	}
	got, err := v.Open(1, sealed, "row-1", "access")
	if err != nil || string(got) != "gho_token" {
		t.Fatalf("Open() = %q, %v; want the plaintext", got, err)
	}
	tests := []struct {
		name  string
		v     Vault
		keyID int
		row   string
		field string
	}{
		{"another row", v, 1, "row-2", "access"},
		{"another field", v, 1, "row-1", "refresh"},
		{"another generation", v, 2, "row-1", "access"},
		{"another secret", other, 1, "row-1", "access"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.v.Open(tt.keyID, sealed, tt.row, tt.field); !errors.Is(err, ErrVaultOpen) {
				t.Errorf("Open() error = %v, want ErrVaultOpen", err)
			}
		})
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if _, err := v.Open(1, tampered, "row-1", "access"); !errors.Is(err, ErrVaultOpen) {
		t.Errorf("Open(tampered) error = %v, want ErrVaultOpen", err)
	}
}
