package oauth

import (
	"errors"
	"testing"
)

func TestSealSecret_BoundToKeyAndAssociatedData(t *testing.T) {
	key := DeriveKey([]byte("test root secret, not for production"), PurposeUpstreamSecret, 32)
	sealed, err := SealSecret(key, "app-1/client_secret", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenSecret(key, "app-1/client_secret", sealed); err != nil || string(got) != "s3cret" {
		t.Fatalf("OpenSecret() = %q, %v", got, err)
	}
	other := DeriveKey([]byte("another root secret, not for prod"), PurposeUpstreamSecret, 32)
	tests := []struct {
		name string
		key  []byte
		ad   string
		data []byte
	}{
		{"other row", key, "app-2/client_secret", sealed},
		{"other column", key, "app-1/own_secret", sealed},
		{"other key", other, "app-1/client_secret", sealed},
		{"truncated", key, "app-1/client_secret", sealed[:5]},
		{"empty", key, "app-1/client_secret", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenSecret(tt.key, tt.ad, tt.data); !errors.Is(err, ErrUnsealed) {
				t.Errorf("OpenSecret() = %v, want ErrUnsealed", err)
			}
		})
	}
}
