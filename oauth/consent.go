package oauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PurposeConsentTicket is the DeriveKey purpose of the consent-ticket MAC key.
const PurposeConsentTicket = "authgpts consent ticket key v1"

// ConsentTicketTTL is how long a consent page may stay open before Allow stops working.
const ConsentTicketTTL = 15 * time.Minute

// ConsentTicket binds a consent form to the authorization request it answers and to the
// user it was shown to, so that the POST cannot be replayed for another user, another
// client or other parameters (AI-CLIENTS.md R15). It travels in a hidden field, MACed;
// nothing about the pending request is stored on the server.
type ConsentTicket struct {
	UserID              string   `json:"u"`
	ClientID            string   `json:"c"`
	RedirectURI         string   `json:"r"`
	RedirectURIGiven    bool     `json:"rg,omitempty"`
	Scopes              []string `json:"s"`
	State               string   `json:"st,omitempty"`
	Nonce               string   `json:"n,omitempty"`
	CodeChallenge       string   `json:"cc,omitempty"`
	CodeChallengeMethod string   `json:"ccm,omitempty"`
	AppID               string   `json:"app,omitempty"` // the app the request is bound to (RFC 8707 resource)
	Resource            string   `json:"res,omitempty"` // the canonical resource: the tokens' aud
	AuthTime            int64    `json:"at"`
	Expiry              int64    `json:"exp"`
}

// TicketSigner MACs and checks consent tickets with HMAC-SHA256. Safe for concurrent use.
type TicketSigner struct {
	key []byte
}

// NewTicketSigner returns a signer keyed with key (DeriveKey(root,
// PurposeConsentTicket, 32)). It panics on a key shorter than 32 bytes.
func NewTicketSigner(key []byte) TicketSigner {
	if len(key) < minHashKey {
		panic(fmt.Sprintf("oauth: NewTicketSigner: key must be at least %d bytes", minHashKey))
	}
	return TicketSigner{key: bytes.Clone(key)}
}

// errBadTicket is the one error a ticket check returns: the page is reloaded either way.
var errBadTicket = errors.New("oauth: consent ticket is invalid or expired")

// Sign returns base64url(JSON) "." base64url(HMAC).
func (s TicketSigner) Sign(t ConsentTicket) (string, error) {
	payload, err := json.Marshal(t)
	if err != nil {
		return "", fmt.Errorf("oauth: sign consent ticket: %w", err)
	}
	body := base64.RawURLEncoding.EncodeToString(payload)
	return body + "." + base64.RawURLEncoding.EncodeToString(s.mac(body)), nil
}

// Open checks the MAC and the expiry and returns the ticket.
func (s TicketSigner) Open(ticket string, now time.Time) (ConsentTicket, error) {
	body, sig, ok := strings.Cut(ticket, ".")
	if !ok {
		return ConsentTicket{}, errBadTicket
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(body)) {
		return ConsentTicket{}, errBadTicket
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return ConsentTicket{}, errBadTicket
	}
	var t ConsentTicket
	if err := json.Unmarshal(payload, &t); err != nil || now.Unix() >= t.Expiry {
		return ConsentTicket{}, errBadTicket
	}
	return t, nil
}

func (s TicketSigner) mac(body string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("consent\x00"))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// IsRequiredScope reports whether a scope cannot be switched off on the consent page:
// openid, which only says who the user is and without which an OpenID Connect client
// cannot work.
func IsRequiredScope(scope string) bool { return scope == "openid" }

// ApprovedScopes returns the requested scopes the user approved: the required ones and
// the optional ones that were left switched on, in request order.
func ApprovedScopes(requested, switchedOn []string) []string {
	out := make([]string, 0, len(requested))
	for _, s := range requested {
		if IsRequiredScope(s) || slices.Contains(switchedOn, s) {
			out = append(out, s)
		}
	}
	return out
}

// MergeConsent returns the scopes a grant holds after a consent: what it held, plus what
// was approved now, minus what was offered now and switched off (the user's latest
// answer about a scope wins).
func MergeConsent(held, requested, approved []string) []string {
	out := make([]string, 0, len(held)+len(approved))
	for _, s := range held {
		if slices.Contains(requested, s) && !slices.Contains(approved, s) {
			continue
		}
		out = append(out, s)
	}
	for _, s := range approved {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
