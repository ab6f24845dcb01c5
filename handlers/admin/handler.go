// Package admin is the admin console. Every route answers 404 to anyone who is not an
// admin, so the console's existence is not revealed.
//
//	GET  /admin              platform totals and sign-ups chart
//	GET  /admin/developers   users who own apps (search, keyset pagination)
//	GET  /admin/users        every user
//	GET  /admin/apps         every app
//	GET  /admin/clients      every client
//	GET  /admin/audit        audit log with actor/action/target/time filters
//	POST /admin/suspend      suspend or reinstate a user, app or client (audited)
package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/admin"
	"github.com/authgpts/authgpts/views/components"
	"github.com/authgpts/authgpts/views/layout"
)

const pageSize = 50

// Handler serves the admin console.
type Handler struct {
	Store *store.Store
	Now   func() time.Time
}

// Register mounts the console on the browser group; it adds the admin check.
func (h *Handler) Register(r gin.IRouter) {
	g := r.Group("/admin", web.RequireAdmin())
	g.GET("", h.overview)
	g.GET("/developers", h.users(true))
	g.GET("/users", h.users(false))
	g.GET("/apps", h.apps)
	g.GET("/clients", h.clients)
	g.GET("/audit", h.audit)
	g.POST("/suspend", h.suspend)
}

func chrome(c *gin.Context, title string) layout.Chrome {
	u, _ := web.CurrentUser(c)
	return layout.Chrome{Title: title, UserEmail: u.DisplayName(), IsAdmin: true, Active: "admin"}
}

func (h *Handler) overview(c *gin.Context) {
	ctx := c.Request.Context()
	now := h.Now()
	totals, err := h.Store.PlatformTotals(ctx, now)
	if err != nil {
		web.Fail(c, err)
		return
	}
	since := now.AddDate(0, 0, -29).Truncate(24 * time.Hour)
	days, err := h.Store.SignupsPerDay(ctx, since)
	if err != nil {
		web.Fail(c, err)
		return
	}
	calls, err := h.Store.GatewayCallsPerDay(ctx, since)
	if err != nil {
		web.Fail(c, err)
		return
	}
	busy, err := h.Store.BusiestApps(ctx, now.AddDate(0, 0, -30), 10)
	if err != nil {
		web.Fail(c, err)
		return
	}
	var busiest []admin.BusyApp
	for _, a := range busy {
		busiest = append(busiest, admin.BusyApp{Name: a.Name, Slug: a.Slug, Owner: a.OwnerEmail, Calls: n(a.Calls), Errors: n(a.Errors)})
	}
	web.Render(c, http.StatusOK, admin.Overview(admin.OverviewVM{
		Chrome: chrome(c, "Admin"),
		Stats: []admin.Stat{
			{Label: "Users", Value: n(totals.Users), Note: n(totals.Signups7d) + " signed up this week"},
			{Label: "Developers", Value: n(totals.Developers)},
			{Label: "Apps", Value: n(totals.Apps), Note: n(totals.Clients) + " clients"},
			{Label: "Active users", Value: n(totals.Active30d), Note: "signed in within 30 days"},
			{Label: "Connected apps", Value: n(totals.LiveGrants), Note: "live consents"},
			{Label: "User tokens", Value: n(totals.UserTokens30d), Note: "issued in 30 days (code and refresh)"},
			{Label: "Gateway calls", Value: n(totals.GatewayCalls30d), Note: "in 30 days"},
			{Label: "Gateway errors", Value: n(totals.GatewayErrors30d), Note: "4xx and 5xx in 30 days"},
		},
		Signups:     dailyChart("signups-chart", "Sign-ups per day, last 30 days", since, 30, days),
		Calls:       callsChart(since, 30, calls),
		BusiestApps: busiest,
	}))
}

// dailyChart fills the gaps of a sparse daily series.
func dailyChart(id, title string, since time.Time, days int, counts []store.DayCount) components.ChartProps {
	byDay := make(map[string]float64, len(counts))
	for _, d := range counts {
		byDay[d.Day.UTC().Format("2006-01-02")] = float64(d.N)
	}
	p := components.ChartProps{ID: id, Title: title}
	values := make([]float64, 0, days)
	for i := range days {
		d := since.AddDate(0, 0, i).UTC()
		p.Labels = append(p.Labels, d.Format("Jan 2"))
		values = append(values, byDay[d.Format("2006-01-02")])
	}
	p.Series = []components.Series{{Name: "Sign-ups", Fill: "fill-indigo-500", Swatch: "bg-indigo-500", Values: values}}
	return p
}

// callsChart lays gateway calls per day, split into answered and errors, on every day.
func callsChart(since time.Time, days int, rows []store.DayCalls) components.ChartProps {
	byDay := make(map[string]store.DayCalls, len(rows))
	for _, r := range rows {
		byDay[r.Day.UTC().Format("2006-01-02")] = r
	}
	p := components.ChartProps{ID: "gateway-calls-chart", Title: "Gateway calls per day, last 30 days"}
	ok, errs := make([]float64, days), make([]float64, days)
	for i := range days {
		d := since.AddDate(0, 0, i).UTC()
		p.Labels = append(p.Labels, d.Format("Jan 2"))
		r := byDay[d.Format("2006-01-02")]
		ok[i], errs[i] = float64(r.Calls-r.Errors), float64(r.Errors)
	}
	p.Series = []components.Series{
		{Name: "Answered", Fill: "fill-emerald-500", Swatch: "bg-emerald-500", Values: ok},
		{Name: "Errors", Fill: "fill-red-500", Swatch: "bg-red-500", Values: errs},
	}
	return p
}

func (h *Handler) users(developersOnly bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		q := strings.ToLower(strings.TrimSpace(c.Query("q")))
		after, ok := parseCursor(c.Query("after"))
		if !ok {
			web.BadRequest(c, "That page link is not valid.", "Go back to the first page.")
			return
		}
		rows, err := h.Store.AdminUsers(c.Request.Context(), q, developersOnly, after, pageSize+1)
		if err != nil {
			web.Fail(c, err)
			return
		}
		vm := admin.ListVM{Tab: admin.TabUsers, Title: "users", Query: q, ReturnTo: c.Request.URL.RequestURI(),
			Headers: []string{"Email", "Apps", "Role", "Signed up", "Last sign-in"}}
		if developersOnly {
			vm.Tab, vm.Title = admin.TabDevelopers, "developers"
		}
		vm.Chrome = chrome(c, "Admin · "+vm.Title)
		rows, vm.NextURL = page(c, rows, func(u store.AdminUser) string { return cursorOf(u.CreatedAt, u.ID) })
		for _, u := range rows {
			role := "user"
			if u.IsAdmin {
				role = "admin"
			}
			vm.Rows = append(vm.Rows, admin.Row{
				Cells:      []string{u.DisplayName(), n(u.AppCount), role, date(u.CreatedAt), datePtr(u.LastLoginAt)},
				TargetType: store.TargetUser, TargetID: u.ID, Suspended: u.IsSuspended(), Reason: u.SuspendedReason,
			})
		}
		web.Render(c, http.StatusOK, admin.List(vm))
	}
}

func (h *Handler) apps(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	after, ok := parseCursor(c.Query("after"))
	if !ok {
		web.BadRequest(c, "That page link is not valid.", "Go back to the first page.")
		return
	}
	rows, err := h.Store.AdminApps(c.Request.Context(), q, after, pageSize+1)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := admin.ListVM{Chrome: chrome(c, "Admin · apps"), Tab: admin.TabApps, Title: "apps", Query: q, ReturnTo: c.Request.URL.RequestURI(),
		Headers: []string{"Name", "Slug", "Owner", "Clients", "Created"}}
	rows, vm.NextURL = page(c, rows, func(a store.AdminApp) string { return cursorOf(a.CreatedAt, a.ID) })
	for _, a := range rows {
		vm.Rows = append(vm.Rows, admin.Row{
			Cells:      []string{a.Name, a.Slug, a.OwnerEmail, n(a.ClientCount), date(a.CreatedAt)},
			TargetType: store.TargetApp, TargetID: a.ID, Suspended: a.IsSuspended(), Reason: a.SuspendedReason,
		})
	}
	web.Render(c, http.StatusOK, admin.List(vm))
}

func (h *Handler) clients(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	after, ok := parseCursor(c.Query("after"))
	if !ok {
		web.BadRequest(c, "That page link is not valid.", "Go back to the first page.")
		return
	}
	rows, err := h.Store.AdminClients(c.Request.Context(), q, after, pageSize+1)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm := admin.ListVM{Chrome: chrome(c, "Admin · clients"), Tab: admin.TabClients, Title: "clients", Query: q, ReturnTo: c.Request.URL.RequestURI(),
		Headers: []string{"Client ID", "Name", "Kind", "App", "Owner", "Last used"}}
	rows, vm.NextURL = page(c, rows, func(cl store.AdminClient) string { return cursorOf(cl.CreatedAt, cl.ID) })
	for _, cl := range rows {
		app := cl.AppSlug
		if !cl.HasApp() { // an MCP client: bound to apps per grant, not owned by a developer
			app = "(any MCP app: " + strings.ReplaceAll(cl.Origin, "_", " ") + ")"
		}
		vm.Rows = append(vm.Rows, admin.Row{
			Cells:      []string{cl.ID, cl.Name, cl.Kind, app, cl.OwnerEmail, datePtr(cl.LastUsedAt)},
			TargetType: store.TargetClient, TargetID: cl.ID, Suspended: cl.IsSuspended(), Reason: cl.SuspendedReason,
		})
	}
	web.Render(c, http.StatusOK, admin.List(vm))
}

func (h *Handler) audit(c *gin.Context) {
	vm := admin.AuditVM{Chrome: chrome(c, "Admin · audit log"),
		Actor: strings.TrimSpace(c.Query("actor")), Action: strings.TrimSpace(c.Query("action")),
		Target: strings.TrimSpace(c.Query("target")), From: c.Query("from"), To: c.Query("to")}
	f := store.AuditFilter{Actor: strings.ToLower(vm.Actor), Action: vm.Action, Target: vm.Target}
	var ok bool
	if f.From, ok = parseDate(vm.From, 0); !ok {
		vm.Error = "From must be a date like 2026-11-01."
	}
	if f.To, ok = parseDate(vm.To, 24*time.Hour); !ok {
		vm.Error = "To must be a date like 2026-11-30."
	}
	if b := c.Query("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			web.BadRequest(c, "That page link is not valid.", "Go back to the first page.")
			return
		}
		f.BeforeID = id
	}
	if vm.Error != "" {
		web.Render(c, http.StatusUnprocessableEntity, admin.Audit(vm))
		return
	}
	entries, err := h.Store.AuditPage(c.Request.Context(), f, pageSize+1)
	if err != nil {
		web.Fail(c, err)
		return
	}
	if len(entries) > pageSize {
		entries = entries[:pageSize]
		q := c.Request.URL.Query()
		q.Set("before", strconv.FormatInt(entries[len(entries)-1].ID, 10))
		vm.NextURL = "/admin/audit?" + q.Encode()
	}
	for _, e := range entries {
		target := e.TargetType
		if e.TargetID != "" {
			target += ":" + e.TargetID
		}
		vm.Entries = append(vm.Entries, admin.AuditRow{
			At: e.At.UTC().Format("2006-01-02 15:04:05"), Actor: orDash(e.ActorEmail), Action: e.Action,
			Target: target, IP: e.IP, Details: compactDetails(e.Details),
		})
	}
	web.Render(c, http.StatusOK, admin.Audit(vm))
}

func (h *Handler) suspend(c *gin.Context) {
	if !web.ParseForm(c) {
		return
	}
	targetType, targetID := c.PostForm("target_type"), c.PostForm("target_id")
	reason := strings.TrimSpace(c.PostForm("reason"))
	suspend := c.PostForm("action") == "suspend"
	if suspend && (reason == "" || len(reason) > 200) {
		web.Error(c, http.StatusUnprocessableEntity, "Give a reason of at most 200 characters.", "The reason is kept in the audit log and shown to other admins.")
		return
	}
	u, _ := web.CurrentUser(c)
	if suspend && targetType == store.TargetUser && targetID == u.ID {
		web.Error(c, http.StatusUnprocessableEntity, "You cannot suspend yourself.", "Ask another admin.")
		return
	}
	actor := store.AuditEntry{ActorID: u.ID, ActorEmail: u.Email, IP: c.ClientIP()}
	if err := h.Store.SetSuspended(c.Request.Context(), targetType, targetID, suspend, reason, actor, h.Now()); err != nil {
		web.Fail(c, err)
		return
	}
	web.Redirect(c, web.SafeReturnTo(c.PostForm("return_to"), "/admin"))
}

// page trims the extra row fetched to learn whether a next page exists.
func page[T any](c *gin.Context, rows []T, cursor func(T) string) ([]T, string) {
	if len(rows) <= pageSize {
		return rows, ""
	}
	rows = rows[:pageSize]
	q := c.Request.URL.Query()
	q.Set("after", cursor(rows[len(rows)-1]))
	return rows, c.Request.URL.Path + "?" + q.Encode()
}

// cursorOf encodes a keyset position as "<unix nanoseconds>_<id>".
func cursorOf(at time.Time, id string) string {
	return strconv.FormatInt(at.UnixNano(), 10) + "_" + id
}

func parseCursor(raw string) (store.Cursor, bool) {
	if raw == "" {
		return store.Cursor{}, true
	}
	ns, id, ok := strings.Cut(raw, "_")
	if !ok || id == "" || len(id) > 100 {
		return store.Cursor{}, false
	}
	v, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return store.Cursor{}, false
	}
	at := time.Unix(0, v).UTC()
	return store.Cursor{At: &at, ID: id}, true
}

func parseDate(raw string, add time.Duration) (*time.Time, bool) {
	if raw == "" {
		return nil, true
	}
	t, err := time.Parse("2006-01-02", raw)
	if err != nil {
		return nil, false
	}
	t = t.Add(add)
	return &t, true
}

func compactDetails(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "{}" {
		return ""
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func n(v int64) string { return strconv.FormatInt(v, 10) }

func date(t time.Time) string { return t.UTC().Format("2006-01-02") }

func datePtr(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return date(*t)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
