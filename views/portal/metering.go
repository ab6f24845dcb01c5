package portal

import (
	"strings"
	"time"

	"github.com/authgpts/authgpts/views/components"
)

// Element ids of the app page's metering sections.
const (
	IDPrices  = "prices"
	IDAPIKeys = "api-keys"
)

// PricesVM is the app page's "Prices and plan" section: the price rules per route on
// top of the default cost, and the monthly plan.
type PricesVM struct {
	AppURL      string
	Metering    bool
	DefaultCost int64
	Rules       []components.PriceRule
	Form        NewPriceFormVM
	Plan        PlanFormVM
	Saved       string // what was just saved, for the status line
	OOB         bool   // swapped out of band (a settings change moved the default cost)
}

// NewPriceFormVM is the "Add a price" form with what was typed.
type NewPriceFormVM struct {
	Method  string
	Pattern string
	Credits string
	Errors  Errors
}

// PlanFormVM is the monthly plan form.
type PlanFormVM struct {
	Allowance string
	TopUpURL  string
	Errors    Errors
}

// Methods offered by the price form ("*" is any).
var PriceMethods = []string{"*", "GET", "POST", "PUT", "PATCH", "DELETE"}

// APIKeyRow is one API key in a list.
type APIKeyRow struct {
	ID         string
	Name       string
	Hint       string
	AppName    string // personal keys: the app
	Scopes     []string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
	Expired    bool
}

// Live reports whether the key still works.
func (k APIKeyRow) Live() bool { return k.RevokedAt == nil && !k.Expired }

// NewKeyFormVM is a "Create a key" form.
type NewKeyFormVM struct {
	Name        string
	ExpiresDays string
	Scopes      []string // checked
	Errors      Errors
}

// CreatedKeyVM is a key shown once, right after it was created.
type CreatedKeyVM struct {
	Name string
	Key  string
}

// APIKeysVM is the app page's "API keys" section: developer keys for
// server-to-server callers.
type APIKeysVM struct {
	AppURL     string
	GatewayURL string
	Scopes     []string // the app's scopes a key may carry
	Keys       []APIKeyRow
	Form       NewKeyFormVM
	Created    *CreatedKeyVM
}

func scopesLabel(s []string) string {
	if len(s) == 0 {
		return "no scope"
	}
	return strings.Join(s, " ")
}

func keyStatus(k APIKeyRow) string {
	switch {
	case k.RevokedAt != nil:
		return "Revoked " + Date(*k.RevokedAt)
	case k.Expired:
		return "Expired " + Date(*k.ExpiresAt)
	case k.ExpiresAt != nil:
		return "Expires " + Date(*k.ExpiresAt)
	}
	return "No expiry"
}

func methodOptionLabel(m string) string {
	if m == "*" {
		return "Any method"
	}
	return m
}
