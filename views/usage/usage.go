// Package usage renders a developer's usage page for one app: range and client filters,
// headline numbers with the change against the previous period, charts, top users, CSV
// export and credit management. The filterable panel and the credits panel are each their
// own component, swapped by htmx.
package usage

import (
	"github.com/authgpts/authgpts/views/components"
	"github.com/authgpts/authgpts/views/layout"
)

// PageVM is the whole usage page.
type PageVM struct {
	Chrome  layout.Chrome
	AppName string
	Slug    string
	Panel   PanelVM
	Credits CreditsVM
}

// Option is one choice of a select.
type Option struct{ Value, Label string }

// Stat is a headline number and its change against the previous period.
type Stat struct {
	Key                  string // stable name for tests and styling: calls, users, errors, credits, latency
	Label, Value, Change string
	Trend                int // 1 up, -1 down, 0 flat/unknown
	GoodWhenUp           bool
}

// PanelVM is the part that changes with the range and client filters.
type PanelVM struct {
	Slug      string
	Range     string // "24h", "7d" or "30d"
	ClientID  string
	Clients   []Option
	KeyID     string   // the API key filter; "" for every call
	Keys      []Option // the app's API keys
	Stats     []Stat
	Calls     components.ChartProps
	Users     components.ChartProps
	Credits   components.ChartProps
	Latency   components.ChartProps
	Upstream  *components.ChartProps // upstream-reported cost, when an upstream reported any
	TopUsers  []TopUserRow
	TopRoutes []TopRouteRow
	CSVURL    string
}

// TopUserRow is one line of the top users table.
type TopUserRow struct{ Email, Calls, Credits, Balance string }

// TopRouteRow is one line of the top routes table.
type TopRouteRow struct{ Method, Route, Calls, Errors, Credits, UpstreamCost string }

// CreditsVM is the credits panel: search a user, change a balance, reset everyone.
type CreditsVM struct {
	Slug     string
	Metering bool
	Email    string
	Account  *CreditAccount
	Error    string
	Notice   string
}

// CreditAccount is the user found by the search.
type CreditAccount struct {
	Email, Balance, RecentSpend string
}

func filterQuery(vm PanelVM, rng string) string {
	return "range=" + rng + "&client=" + vm.ClientID + "&key=" + vm.KeyID
}

var ranges = []Option{{"24h", "24 hours"}, {"7d", "7 days"}, {"30d", "30 days"}}

func rangeClass(active bool) string {
	if active {
		return "rounded-md bg-white px-3 py-1.5 text-sm font-medium text-slate-900 shadow-sm"
	}
	return "rounded-md px-3 py-1.5 text-sm font-medium text-slate-600 hover:text-slate-900"
}

func trendClass(s Stat) string {
	switch {
	case s.Trend == 0:
		return "text-slate-500"
	case (s.Trend > 0) == s.GoodWhenUp:
		return "text-emerald-600"
	default:
		return "text-red-600"
	}
}
