package oauth

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// PurposeConnectionVault is the DeriveKey purpose of the vault's master key, from which
// every generation of the key that seals third-party tokens and provider client secrets
// is derived (DESIGN.md, "Connections").
const PurposeConnectionVault = "authgpts connection vault key v1"

// vaultVersion prefixes every sealed value, so the format can change later.
const vaultVersion byte = 1

// ErrVaultOpen is returned when a sealed value does not open: a wrong key, a value moved
// to another row or field, or a modified ciphertext.
var ErrVaultOpen = errors.New("oauth: sealed value does not open")

// Vault seals values with AES-256-GCM under numbered key generations, each derived from
// the master key (itself derived from AUTHGPTS_SECRET). A sealed value records nothing
// of its generation: the row stores the key ID next to it, and rotation re-seals every
// row under a newer generation, so a retired generation's key opens nothing.
type Vault struct {
	master []byte
	aeads  *sync.Map // key ID -> cipher.AEAD
}

// NewVault returns a vault over master (DeriveKey(root, PurposeConnectionVault, 32)).
func NewVault(master []byte) Vault {
	if len(master) != 32 {
		panic("oauth: NewVault: the master key must be 32 bytes")
	}
	return Vault{master: master, aeads: &sync.Map{}}
}

func (v Vault) aead(keyID int) (cipher.AEAD, error) {
	if v.master == nil {
		return nil, errors.New("oauth: vault has no key")
	}
	if keyID < 1 {
		return nil, fmt.Errorf("oauth: vault key ID %d", keyID)
	}
	if a, ok := v.aeads.Load(keyID); ok {
		return a.(cipher.AEAD), nil
	}
	block, err := aes.NewCipher(DeriveKey(v.master, "generation "+strconv.Itoa(keyID), 32))
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	v.aeads.Store(keyID, a)
	return a, nil
}

// Seal encrypts plaintext under key generation keyID with a random nonce. rowID and
// field are the additional data: a ciphertext copied into another row, or from the
// refresh-token column into the access-token column, does not open.
func (v Vault) Seal(keyID int, plaintext []byte, rowID, field string) ([]byte, error) {
	a, err := v.aead(keyID)
	if err != nil {
		return nil, err
	}
	return a.Seal([]byte{vaultVersion}, nil, plaintext, vaultAD(rowID, field)), nil
}

// Open decrypts a value sealed by Seal with the same key ID, row ID and field.
func (v Vault) Open(keyID int, sealed []byte, rowID, field string) ([]byte, error) {
	a, err := v.aead(keyID)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1 || sealed[0] != vaultVersion {
		return nil, ErrVaultOpen
	}
	out, err := a.Open(nil, nil, sealed[1:], vaultAD(rowID, field))
	if err != nil {
		return nil, ErrVaultOpen
	}
	return out, nil
}

func vaultAD(rowID, field string) []byte { return []byte(rowID + "\x00" + field) }
