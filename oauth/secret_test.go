package oauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

func TestNewToken(t *testing.T) {
	prefixes := []string{PrefixClientSecret, PrefixCode, PrefixRefreshToken, PrefixRegistrationToken, ""}
	for _, prefix := range prefixes {
		seen := map[string]bool{}
		for range 100 {
			tok := NewToken(prefix)
			rest, ok := strings.CutPrefix(tok, prefix)
			if !ok {
				t.Fatalf("NewToken(%q) = %q, want the prefix", prefix, tok)
			}
			raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
			if err != nil || len(raw) != 32 {
				t.Fatalf("NewToken(%q) = %q: want 256 bits of unpadded base64url (err %v, %d bytes)", prefix, tok, err, len(raw))
			}
			if seen[tok] {
				t.Fatalf("NewToken(%q) repeated %q", prefix, tok)
			}
			seen[tok] = true
		}
	}
}

func TestNewClientID(t *testing.T) {
	id := NewClientID()
	rest, ok := strings.CutPrefix(id, PrefixClientID)
	if !ok {
		t.Fatalf("NewClientID() = %q, want prefix %q", id, PrefixClientID)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil || len(raw) != 16 {
		t.Fatalf("NewClientID() = %q: want 128 bits of unpadded base64url", id)
	}
	if NewClientID() == id {
		t.Error("NewClientID() repeated a value")
	}
}

func TestPrefixesDistinct(t *testing.T) {
	ps := []string{PrefixClientID, PrefixClientSecret, PrefixCode, PrefixRefreshToken, PrefixRegistrationToken}
	for i, a := range ps {
		for j, b := range ps {
			if i != j && strings.HasPrefix(a, b) {
				t.Errorf("prefix %q starts with prefix %q: kinds would be ambiguous", a, b)
			}
		}
	}
}

func TestHasher(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	h := NewHasher(key)
	tok := NewToken(PrefixRefreshToken)

	sum := h.Hash(tok)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tok))
	if want := m.Sum(nil); !bytes.Equal(sum, want) {
		t.Fatalf("Hash() = %x, want HMAC-SHA256 %x", sum, want)
	}
	if len(sum) != 32 {
		t.Errorf("len(Hash()) = %d, want 32", len(sum))
	}

	key[0] = 8 // NewHasher must have copied the key
	if !bytes.Equal(h.Hash(tok), sum) {
		t.Error("Hash() changed after the caller modified its key slice")
	}

	other := NewHasher(bytes.Repeat([]byte{9}, 32))
	tests := []struct {
		name string
		h    Hasher
		tok  string
		hash []byte
		want bool
	}{
		{"same token", h, tok, sum, true},
		{"other token", h, NewToken(PrefixRefreshToken), sum, false},
		{"other key", other, tok, sum, false},
		{"truncated hash", h, tok, sum[:16], false},
		{"nil hash", h, tok, nil, false},
		{"prefix matters", h, strings.TrimPrefix(tok, PrefixRefreshToken), sum, false},
	}
	for _, tt := range tests {
		if got := tt.h.Equal(tt.tok, tt.hash); got != tt.want {
			t.Errorf("%s: Equal() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestHasherPanics(t *testing.T) {
	tests := []struct {
		name string
		fn   func()
	}{
		{"short key", func() { NewHasher(make([]byte, 31)) }},
		{"nil key", func() { NewHasher(nil) }},
		{"zero Hasher", func() { Hasher{}.Hash("x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", tt.name)
				}
			}()
			tt.fn()
		})
	}
}

func TestDeriveKey(t *testing.T) {
	// RFC 5869 Appendix A.3: SHA-256, empty salt, empty info.
	ikm := bytes.Repeat([]byte{0x0b}, 22)
	want, _ := hex.DecodeString("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
	if got := DeriveKey(ikm, "", 42); !bytes.Equal(got, want) {
		t.Fatalf("DeriveKey(RFC 5869 A.3) = %x, want %x", got, want)
	}

	root := []byte("a root secret of reasonable length!!")
	a := DeriveKey(root, PurposeTokenHash, 32)
	if !bytes.Equal(a, DeriveKey(root, PurposeTokenHash, 32)) {
		t.Error("DeriveKey is not deterministic")
	}
	if len(DeriveKey(root, PurposeSessionHash, 64)) != 64 {
		t.Error("DeriveKey did not return n bytes")
	}
	purposes := []string{PurposeSessionHash, PurposeSessionBlock, PurposeOTP, PurposeTokenHash, PurposeKeyEncryption}
	seen := map[string]string{}
	for _, p := range purposes {
		k := string(DeriveKey(root, p, 32))
		if prev, ok := seen[k]; ok {
			t.Errorf("purposes %q and %q derive the same key", prev, p)
		}
		seen[k] = p
	}
	if bytes.Equal(a, DeriveKey([]byte("another root secret of good length!!"), PurposeTokenHash, 32)) {
		t.Error("different roots derived the same key")
	}

	for name, fn := range map[string]func(){
		"empty root": func() { DeriveKey(nil, PurposeOTP, 32) },
		"zero n":     func() { DeriveKey(root, PurposeOTP, 0) },
		"huge n":     func() { DeriveKey(root, PurposeOTP, 255*32+1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("DeriveKey with %s did not panic", name)
				}
			}()
			fn()
		}()
	}
}
