// Package admin renders the admin console: platform totals, lists of developers, apps,
// clients and users with search and keyset pagination, suspension, and the audit log.
package admin

import (
	"github.com/authgpts/authgpts/views/components"
	"github.com/authgpts/authgpts/views/layout"
)

// Tab names the console's sections.
type Tab string

// Console sections.
const (
	TabOverview   Tab = "overview"
	TabDevelopers Tab = "developers"
	TabUsers      Tab = "users"
	TabApps       Tab = "apps"
	TabClients    Tab = "clients"
	TabAudit      Tab = "audit"
)

// OverviewVM is the console's home.
type OverviewVM struct {
	Chrome      layout.Chrome
	Stats       []Stat
	Signups     components.ChartProps
	Calls       components.ChartProps
	BusiestApps []BusyApp
}

// BusyApp is one line of the busiest apps table.
type BusyApp struct{ Name, Slug, Owner, Calls, Errors string }

// Stat is one headline number.
type Stat struct{ Label, Value, Note string }

// Row is one line of a list: cells to show and, when suspendable, the switch.
type Row struct {
	Cells      []string
	TargetType string // "user", "app" or "client"; empty: no suspend switch
	TargetID   string
	Suspended  bool
	Reason     string
}

// ListVM is a searchable, paginated list.
type ListVM struct {
	Chrome   layout.Chrome
	Tab      Tab
	Title    string
	Query    string
	Headers  []string
	Rows     []Row
	NextURL  string // empty on the last page
	ReturnTo string // where suspend/unsuspend comes back to
}

// AuditVM is the audit log viewer.
type AuditVM struct {
	Chrome  layout.Chrome
	Actor   string
	Action  string
	Target  string
	From    string
	To      string
	Entries []AuditRow
	NextURL string
	Error   string
}

// AuditRow is one formatted audit entry.
type AuditRow struct {
	At, Actor, Action, Target, IP, Details string
}

func tabClass(active bool) string {
	if active {
		return "whitespace-nowrap border-b-2 border-indigo-600 px-1 pb-3 text-sm font-medium text-indigo-700"
	}
	return "whitespace-nowrap border-b-2 border-transparent px-1 pb-3 text-sm font-medium text-slate-500 hover:border-slate-300 hover:text-slate-700"
}

var tabs = []struct {
	Tab   Tab
	Label string
	URL   string
}{
	{TabOverview, "Overview", "/admin"},
	{TabDevelopers, "Developers", "/admin/developers"},
	{TabApps, "Apps", "/admin/apps"},
	{TabClients, "Clients", "/admin/clients"},
	{TabUsers, "Users", "/admin/users"},
	{TabAudit, "Audit log", "/admin/audit"},
}
