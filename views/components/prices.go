package components

import (
	"strconv"
	"time"
)

// PriceListProps is what a call of an app costs: shown on the GPT setup page and on the
// consent page.
type PriceListProps struct {
	ID               string
	DefaultCost      int64
	Rules            []PriceRule
	FreeCredits      int64
	MonthlyAllowance int64
	TopUpURL         string
	Upstream         bool // the upstream may report the cost of each call (AuthGPTs-Credits)
}

// PriceRule is one route price.
type PriceRule struct {
	Method  string
	Pattern string
	Credits int64
}

// MethodLabel is "any" for the wildcard method.
func MethodLabel(m string) string {
	if m == "*" || m == "" {
		return "any"
	}
	return m
}

// Credits spells a number of credits.
func Credits(n int64) string {
	if n == 1 {
		return "1 credit"
	}
	return strconv.FormatInt(n, 10) + " credits"
}

// ResetDate is the allowance's next reset as shown to people (the 1st, UTC).
func ResetDate(t time.Time) string { return t.UTC().Format("Jan 2, 2006") }
