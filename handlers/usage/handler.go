// Package usage is the developer's usage page of one app, and its credit management.
// Every route is scoped to the signed-in owner: another developer's app is 404.
//
//	GET  /dashboard/apps/:slug/usage              page (full, or the panel for htmx)
//	GET  /dashboard/apps/:slug/usage/export.csv   the period's series as CSV
//	GET  /dashboard/apps/:slug/credits            find a user's balance (panel)
//	POST /dashboard/apps/:slug/credits            top up or set a balance (audited)
//	POST /dashboard/apps/:slug/credits/reset      set every balance (audited)
package usage

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/web"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/views/components"
	"github.com/authgpts/authgpts/views/layout"
	"github.com/authgpts/authgpts/views/usage"
)

// Handler serves the usage and credits routes.
type Handler struct {
	Store *store.Store
	Now   func() time.Time
}

// Register mounts the routes on a signed-in browser group.
func (h *Handler) Register(r gin.IRoutes) {
	r.GET("/dashboard/apps/:slug/usage", h.page)
	r.GET("/dashboard/apps/:slug/usage/export.csv", h.exportCSV)
	r.GET("/dashboard/apps/:slug/credits", h.findCredits)
	r.POST("/dashboard/apps/:slug/credits", h.changeCredits)
	r.POST("/dashboard/apps/:slug/credits/reset", h.resetCredits)
}

// period is a chosen range: its buckets, and the previous period to compare with. The 7
// and 30 day views use UTC days, which the daily roll-ups serve directly.
type period struct {
	name     string
	daily    bool
	step     time.Duration
	buckets  int
	from, to time.Time
}

func (p period) query(appID, clientID string) store.UsageQuery {
	return store.UsageQuery{AppID: appID, ClientID: clientID, From: p.from, To: p.to, Daily: p.daily}
}

func (p period) previous(appID, clientID string) store.UsageQuery {
	span := p.to.Sub(p.from)
	return store.UsageQuery{AppID: appID, ClientID: clientID, From: p.from.Add(-span), To: p.from, Daily: p.daily}
}

func periodOf(name string, now time.Time) period {
	now = now.UTC()
	day := 24 * time.Hour
	switch name {
	case "7d", "30d":
		days := 7
		if name == "30d" {
			days = 30
		}
		to := now.Truncate(day).Add(day)
		return period{name: name, daily: true, step: day, buckets: days, from: to.AddDate(0, 0, -days), to: to}
	default:
		to := now.Truncate(time.Hour).Add(time.Hour)
		return period{name: "24h", step: time.Hour, buckets: 24, from: to.Add(-24 * time.Hour), to: to}
	}
}

func (p period) label(t time.Time) string {
	if p.daily {
		return t.Format("Jan 2")
	}
	return t.Format("15:04")
}

// ownedApp loads the signed-in developer's app or answers 404.
func (h *Handler) ownedApp(c *gin.Context) (store.User, store.App, bool) {
	u, _ := web.CurrentUser(c)
	app, err := h.Store.AppBySlugForOwner(c.Request.Context(), u.ID, c.Param("slug"))
	if err != nil {
		web.Fail(c, err)
		return u, app, false
	}
	return u, app, true
}

func (h *Handler) page(c *gin.Context) {
	u, app, ok := h.ownedApp(c)
	if !ok {
		return
	}
	panel, err := h.panel(c, app)
	if err != nil {
		web.Fail(c, err)
		return
	}
	c.Header("Vary", "HX-Request")
	if web.IsPartial(c) {
		web.Render(c, http.StatusOK, usage.Panel(panel))
		return
	}
	web.Render(c, http.StatusOK, usage.Page(usage.PageVM{
		Chrome:  layout.Chrome{Title: "Usage · " + app.Name, UserEmail: u.DisplayName(), IsAdmin: u.IsAdmin, Active: "dashboard"},
		AppName: app.Name, Slug: app.Slug, Panel: panel,
		Credits: usage.CreditsVM{Slug: app.Slug, Metering: app.MeteringEnabled},
	}))
}

func (h *Handler) panel(c *gin.Context, app store.App) (usage.PanelVM, error) {
	ctx := c.Request.Context()
	p := periodOf(c.Query("range"), h.Now())
	clients, err := h.clientOptions(ctx, app)
	if err != nil {
		return usage.PanelVM{}, err
	}
	keys, err := h.keyOptions(ctx, app)
	if err != nil {
		return usage.PanelVM{}, err
	}
	vm := usage.PanelVM{Slug: app.Slug, Range: p.name, Clients: clients, ClientID: pickClient(clients, c.Query("client")),
		Keys: keys, KeyID: pickClient(keys, c.Query("key"))}
	q := p.query(app.ID, vm.ClientID)
	q.KeyID = vm.KeyID
	cur, err := h.Store.UsageReport(ctx, q, true)
	if err != nil {
		return vm, err
	}
	pq := p.previous(app.ID, vm.ClientID)
	pq.KeyID = vm.KeyID
	prev, err := h.Store.UsageReport(ctx, pq, false)
	if err != nil {
		return vm, err
	}
	var top []store.TopUser
	var routes []store.TopRoute
	if vm.KeyID == "" { // users and routes are not rolled up per key
		if top, err = h.Store.TopUsers(ctx, q, 10); err != nil {
			return vm, err
		}
		if routes, err = h.Store.TopRoutes(ctx, q, 10); err != nil {
			return vm, err
		}
	}
	for _, r := range routes {
		vm.TopRoutes = append(vm.TopRoutes, usage.TopRouteRow{Method: r.Method, Route: r.Route, Calls: i64(r.Calls), Errors: i64(r.Errors),
			Credits: i64(r.Credits), UpstreamCost: dollars(r.UpstreamCostMicros)})
	}
	vm.Stats = stats(cur.Totals, prev.Totals)
	vm.Calls, vm.Users, vm.Credits, vm.Latency = charts(p, cur.Series)
	if cur.Totals.UpstreamCostMicros > 0 {
		up := upstreamChart(p, cur.Series)
		vm.Upstream = &up
	}
	for _, t := range top {
		email := t.Email
		if email == "" {
			email = "(deleted account)"
		}
		balance := "—"
		if t.Balance != nil {
			balance = strconv.FormatInt(*t.Balance, 10)
		}
		vm.TopUsers = append(vm.TopUsers, usage.TopUserRow{Email: email, Calls: strconv.FormatInt(t.Calls, 10), Credits: strconv.FormatInt(t.Credits, 10), Balance: balance})
	}
	vm.CSVURL = fmt.Sprintf("/dashboard/apps/%s/usage/export.csv?range=%s&client=%s&key=%s", app.Slug, p.name, vm.ClientID, vm.KeyID)
	return vm, nil
}

// keyOptions lists the app's API keys for the key filter: developer keys by name,
// personal keys by their hint only (their names are their users').
func (h *Handler) keyOptions(ctx context.Context, app store.App) ([]usage.Option, error) {
	keys, err := h.Store.KeysOfApp(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	out := make([]usage.Option, 0, len(keys))
	for _, k := range keys {
		label := k.Name + " (agk_" + k.Hint + ")"
		if k.UserID != "" {
			label = "Personal key agk_" + k.Hint
		}
		out = append(out, usage.Option{Value: k.ID, Label: label})
	}
	return out, nil
}

// upstreamChart is the upstream-reported cost per bucket, in dollars.
func upstreamChart(p period, series []store.UsageBucket) components.ChartProps {
	byTime := make(map[int64]int64, len(series))
	for _, b := range series {
		byTime[b.Bucket.UTC().Unix()] = b.UpstreamCostMicros
	}
	labels, vals := make([]string, p.buckets), make([]float64, p.buckets)
	for i := range p.buckets {
		t := p.from.Add(time.Duration(i) * p.step)
		labels[i] = p.label(t)
		vals[i] = float64(byTime[t.Unix()]) / 1e6
	}
	return components.ChartProps{ID: "chart-upstream-cost", Title: "Upstream cost (USD, as reported)", Labels: labels, Series: []components.Series{
		{Name: "Upstream cost", Fill: "fill-rose-400", Swatch: "bg-rose-400", Values: vals},
	}}
}

// dollars formats micro-dollars; "—" when nothing was reported.
func dollars(micros int64) string {
	if micros == 0 {
		return "—"
	}
	return "$" + strconv.FormatFloat(float64(micros)/1e6, 'f', -1, 64)
}

// clientOptions lists the clients whose calls the page can filter on: the app's own
// clients and the MCP clients (registered or metadata-document) connected to it.
func (h *Handler) clientOptions(ctx context.Context, app store.App) ([]usage.Option, error) {
	own, err := h.Store.ClientsByApp(ctx, app.ID)
	if err != nil {
		return nil, err
	}
	mcp, err := h.Store.MCPClientsOfApp(ctx, app.OwnerID, app.ID)
	if err != nil {
		return nil, err
	}
	out := make([]usage.Option, 0, len(own)+len(mcp))
	for _, cl := range own {
		out = append(out, usage.Option{Value: cl.ID, Label: cl.Name})
	}
	for _, cl := range mcp {
		out = append(out, usage.Option{Value: cl.ID, Label: cl.Name + " (MCP)"})
	}
	return out, nil
}

// pickClient returns the requested client when it is one of the options; anything else
// means all clients.
func pickClient(options []usage.Option, requested string) string {
	for _, o := range options {
		if o.Value == requested {
			return requested
		}
	}
	return ""
}

func stats(cur, prev store.UsageBucket) []usage.Stat {
	p50 := store.LatencyPercentile(cur.Latency, 0.50)
	p95 := store.LatencyPercentile(cur.Latency, 0.95)
	return []usage.Stat{
		change("calls", "Calls", cur.Calls, prev.Calls, true),
		change("users", "Users", cur.Users, prev.Users, true),
		change("errors", "Errors", cur.Errors(), prev.Errors(), false),
		change("credits", "Credits spent", cur.Credits, prev.Credits, true),
		{Key: "upstream-cost", Label: "Upstream cost", Value: dollars(cur.UpstreamCostMicros), Change: "as reported by your API"},
		{Key: "latency", Label: "Latency p50 / p95", Value: ms(p50) + " / " + ms(p95), Change: "median / 95th percentile"},
	}
}

func change(key, label string, cur, prev int64, goodWhenUp bool) usage.Stat {
	s := usage.Stat{Key: key, Label: label, Value: strconv.FormatInt(cur, 10), GoodWhenUp: goodWhenUp}
	switch {
	case prev == 0 && cur == 0:
		s.Change = "no change"
	case prev == 0:
		s.Change, s.Trend = "new this period", 1
	default:
		pct := float64(cur-prev) / float64(prev) * 100
		s.Change = fmt.Sprintf("%+.0f%% vs previous period", pct)
		switch {
		case cur > prev:
			s.Trend = 1
		case cur < prev:
			s.Trend = -1
		}
	}
	return s
}

// charts lays the sparse series on every bucket of the period.
func charts(p period, series []store.UsageBucket) (calls, users, credits, latency components.ChartProps) {
	byTime := make(map[int64]store.UsageBucket, len(series))
	for _, b := range series {
		byTime[b.Bucket.UTC().Unix()] = b
	}
	ok, c4, c5, u, cr, p50, p95 := make([]float64, p.buckets), make([]float64, p.buckets), make([]float64, p.buckets),
		make([]float64, p.buckets), make([]float64, p.buckets), make([]float64, p.buckets), make([]float64, p.buckets)
	labels := make([]string, p.buckets)
	for i := range p.buckets {
		t := p.from.Add(time.Duration(i) * p.step)
		labels[i] = p.label(t)
		b, found := byTime[t.Unix()]
		if !found {
			continue
		}
		ok[i], c4[i], c5[i] = float64(b.Calls2xx+b.Calls3xx), float64(b.Calls4xx), float64(b.Calls5xx)
		u[i], cr[i] = float64(b.Users), float64(b.Credits)
		p50[i] = float64(store.LatencyPercentile(b.Latency, 0.50).Microseconds()) / 1000
		p95[i] = float64(store.LatencyPercentile(b.Latency, 0.95).Microseconds()) / 1000
	}
	calls = components.ChartProps{ID: "chart-calls", Title: "Calls", Labels: labels, Series: []components.Series{
		{Name: "2xx/3xx", Fill: "fill-emerald-500", Swatch: "bg-emerald-500", Values: ok},
		{Name: "4xx", Fill: "fill-amber-400", Swatch: "bg-amber-400", Values: c4},
		{Name: "5xx", Fill: "fill-red-500", Swatch: "bg-red-500", Values: c5},
	}}
	users = components.ChartProps{ID: "chart-users", Title: "Distinct users", Labels: labels, Series: []components.Series{
		{Name: "Users", Fill: "fill-indigo-500", Swatch: "bg-indigo-500", Values: u},
	}}
	credits = components.ChartProps{ID: "chart-credits", Title: "Credits spent", Labels: labels, Series: []components.Series{
		{Name: "Credits", Fill: "fill-violet-500", Swatch: "bg-violet-500", Values: cr},
	}}
	latency = components.ChartProps{ID: "chart-latency", Title: "Latency p50 and p95 (ms)", Labels: labels, Unit: " ms", Series: []components.Series{
		{Name: "p50", Fill: "fill-sky-500", Swatch: "bg-sky-500", Values: p50},
		{Name: "p95 − p50", Fill: "fill-sky-200", Swatch: "bg-sky-200", Values: minus(p95, p50)},
	}}
	return calls, users, credits, latency
}

func minus(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = max(a[i]-b[i], 0)
	}
	return out
}

func ms(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64) + " ms"
}

func (h *Handler) exportCSV(c *gin.Context) {
	_, app, ok := h.ownedApp(c)
	if !ok {
		return
	}
	p := periodOf(c.Query("range"), h.Now())
	q := p.query(app.ID, "")
	clients, err := h.clientOptions(c.Request.Context(), app)
	if err != nil {
		web.Fail(c, err)
		return
	}
	q.ClientID = pickClient(clients, c.Query("client"))
	keys, err := h.keyOptions(c.Request.Context(), app)
	if err != nil {
		web.Fail(c, err)
		return
	}
	q.KeyID = pickClient(keys, c.Query("key"))
	report, err := h.Store.UsageReport(c.Request.Context(), q, true)
	if err != nil {
		web.Fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-usage-%s.csv"`, app.Slug, p.name))
	c.Status(http.StatusOK)
	w := csv.NewWriter(c.Writer)
	_ = w.Write([]string{"period_start_utc", "calls", "calls_2xx", "calls_3xx", "calls_4xx", "calls_5xx", "distinct_users", "credits", "upstream_cost_usd", "latency_p50_ms", "latency_p95_ms"})
	for _, b := range report.Series {
		_ = w.Write([]string{b.Bucket.UTC().Format(time.RFC3339), i64(b.Calls), i64(b.Calls2xx), i64(b.Calls3xx), i64(b.Calls4xx), i64(b.Calls5xx), i64(b.Users), i64(b.Credits),
			strconv.FormatFloat(float64(b.UpstreamCostMicros)/1e6, 'f', -1, 64), msNum(store.LatencyPercentile(b.Latency, 0.5)), msNum(store.LatencyPercentile(b.Latency, 0.95))})
	}
	w.Flush()
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

func msNum(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', -1, 64)
}

const recentSpendWindow = 30 * 24 * time.Hour

// creditAccount finds the user by email and their balance for the app.
func (h *Handler) creditAccount(c *gin.Context, app store.App, email string) (*usage.CreditAccount, store.User, error) {
	ctx := c.Request.Context()
	user, err := h.Store.UserByEmail(ctx, email)
	if err != nil {
		return nil, user, err
	}
	bal, err := h.Store.CreditBalance(ctx, app.ID, user.ID)
	balance := "no balance yet (free credits apply on first call)"
	switch {
	case err == nil:
		balance = strconv.FormatInt(bal.Balance, 10)
	case err != store.ErrNotFound:
		return nil, user, err
	}
	spent, err := h.Store.RecentSpend(ctx, app.ID, user.ID, h.Now().Add(-recentSpendWindow))
	if err != nil {
		return nil, user, err
	}
	return &usage.CreditAccount{Email: user.DisplayName(), Balance: balance, RecentSpend: strconv.FormatInt(spent, 10)}, user, nil
}

func (h *Handler) findCredits(c *gin.Context) {
	_, app, ok := h.ownedApp(c)
	if !ok {
		return
	}
	vm := usage.CreditsVM{Slug: app.Slug, Metering: app.MeteringEnabled, Email: c.Query("email")}
	email, valid := store.NormalizeEmail(vm.Email)
	if !valid {
		vm.Error = "Enter the email address of a user of this app."
		web.Render(c, http.StatusUnprocessableEntity, usage.Credits(vm))
		return
	}
	acct, _, err := h.creditAccount(c, app, email)
	if err == store.ErrNotFound {
		vm.Error = "No user with that email has signed in yet."
		web.Render(c, http.StatusOK, usage.Credits(vm))
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm.Account = acct
	web.Render(c, http.StatusOK, usage.Credits(vm))
}

// parseAmount reads a non-negative whole number of credits.
func parseAmount(raw string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 64)
	return n, err == nil && n >= 0 && n <= 1_000_000_000_000
}

func (h *Handler) changeCredits(c *gin.Context) {
	u, app, ok := h.ownedApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	vm := usage.CreditsVM{Slug: app.Slug, Metering: app.MeteringEnabled, Email: c.PostForm("email")}
	email, valid := store.NormalizeEmail(vm.Email)
	amount, amountOK := parseAmount(c.PostForm("amount"))
	reason := strings.TrimSpace(c.PostForm("reason"))
	mode := c.PostForm("mode")
	switch {
	case !valid:
		vm.Error = "Enter the email address of a user of this app."
	case !amountOK:
		vm.Error = "Credits must be a whole number, 0 or more."
	case reason == "" || len(reason) > 200:
		vm.Error = "Give a reason (at most 200 characters); it goes in the audit log."
	case mode != "add" && mode != "set":
		vm.Error = "Choose whether to top up or set the balance."
	}
	if vm.Error != "" {
		web.Render(c, http.StatusUnprocessableEntity, usage.Credits(vm))
		return
	}
	user, err := h.Store.UserByEmail(c.Request.Context(), email)
	if err == store.ErrNotFound {
		vm.Error = "No user with that email has signed in yet."
		web.Render(c, http.StatusUnprocessableEntity, usage.Credits(vm))
		return
	}
	if err != nil {
		web.Fail(c, err)
		return
	}
	actor := store.AuditEntry{ActorID: u.ID, ActorEmail: u.Email, IP: c.ClientIP()}
	b, err := h.Store.ChangeCredits(c.Request.Context(), store.CreditChange{AppID: app.ID, UserID: user.ID, Set: mode == "set", Amount: amount, Reason: reason}, actor, h.Now())
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm.Account, _, err = h.creditAccount(c, app, email)
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm.Notice = fmt.Sprintf("%s now has %d credits.", user.DisplayName(), b.Balance)
	web.Render(c, http.StatusOK, usage.Credits(vm))
}

func (h *Handler) resetCredits(c *gin.Context) {
	u, app, ok := h.ownedApp(c)
	if !ok || !web.ParseForm(c) {
		return
	}
	vm := usage.CreditsVM{Slug: app.Slug, Metering: app.MeteringEnabled}
	amount, amountOK := parseAmount(c.PostForm("amount"))
	reason := strings.TrimSpace(c.PostForm("reason"))
	switch {
	case !amountOK:
		vm.Error = "Credits must be a whole number, 0 or more."
	case reason == "" || len(reason) > 200:
		vm.Error = "Give a reason (at most 200 characters); it goes in the audit log."
	}
	if vm.Error != "" {
		web.Render(c, http.StatusUnprocessableEntity, usage.Credits(vm))
		return
	}
	actor := store.AuditEntry{ActorID: u.ID, ActorEmail: u.Email, IP: c.ClientIP()}
	n, err := h.Store.ResetAllCredits(c.Request.Context(), app.ID, amount, reason, actor, h.Now())
	if err != nil {
		web.Fail(c, err)
		return
	}
	vm.Notice = fmt.Sprintf("%d balances set to %d credits.", n, amount)
	web.Render(c, http.StatusOK, usage.Credits(vm))
}
