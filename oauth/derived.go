package oauth

// DerivedKeys are the keys an instance derives from AUTHGPTS_SECRET, each under its own
// purpose. DeriveKeys builds them once, at start, and every surface takes the one it
// needs, so no code outside this file names a purpose to re-derive a key: the rule
// "every high-entropy secret is hashed under the PurposeTokenHash key" is kept here.
type DerivedKeys struct {
	// TokenHash hashes client secrets, codes, refresh, registration and session tokens.
	TokenHash Hasher
	// OTP is the HMAC of one-time email codes.
	OTP Hasher
	// SessionHash and SessionBlock key the gorilla/securecookie session cookie.
	SessionHash, SessionBlock []byte
	// KeyEncryption seals the signing keys stored in the database (SealKey/OpenKey).
	KeyEncryption []byte
	// Tickets signs consent tickets.
	Tickets TicketSigner
	// Rotator derives a refresh token's successor.
	Rotator Rotator
	// Vault seals third-party tokens and provider client secrets (Connections).
	Vault Vault
	// WebhookSecrets seals webhook endpoints' signing secrets (AES-256-GCM).
	WebhookSecrets []byte
	// UpstreamSecret seals identity-source secrets (SealSecret/OpenSecret).
	UpstreamSecret []byte
	// UpstreamState hashes outbound sign-in states and browser bindings and derives
	// their PKCE verifiers and nonces.
	UpstreamState Hasher
}

// derivedKeyLen is the length of every derived key: 256 bits.
const derivedKeyLen = 32

// DeriveKeys derives every key from the root secret. It panics on an empty root, which
// configuration validation rules out.
func DeriveKeys(root []byte) DerivedKeys {
	key := func(purpose string) []byte { return DeriveKey(root, purpose, derivedKeyLen) }
	return DerivedKeys{
		TokenHash:      NewHasher(key(PurposeTokenHash)),
		OTP:            NewHasher(key(PurposeOTP)),
		SessionHash:    key(PurposeSessionHash),
		SessionBlock:   key(PurposeSessionBlock),
		KeyEncryption:  key(PurposeKeyEncryption),
		Tickets:        NewTicketSigner(key(PurposeConsentTicket)),
		Rotator:        NewRotator(key(PurposeRefreshRotation)),
		Vault:          NewVault(key(PurposeConnectionVault)),
		WebhookSecrets: key(PurposeWebhookSecrets),
		UpstreamSecret: key(PurposeUpstreamSecret),
		UpstreamState:  NewHasher(key(PurposeUpstreamState)),
	}
}
