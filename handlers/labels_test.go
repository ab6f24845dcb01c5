package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestPages_EveryInputHasALabel checks the DESIGN.md forms rule on every page a person
// uses: each visible input, select and textarea has a <label> (by for= or by wrapping)
// or an aria-label, so screen readers, password managers and tests can find it.
func TestPages_EveryInputHasALabel(t *testing.T) {
	adminEmail := handlertest.UniqueEmail(t, "admin")
	env := handlertest.New(t, func(d *handlers.Config) { d.AdminEmails = []string{adminEmail} })
	fx := env.NewApp(t, adminEmail, store.ClientKindGPT, "https://chatgpt.com/aip/g-abc/oauth/callback")
	dev := env.SignIn(t, adminEmail)

	pages := map[string]string{}
	get := func(c *http.Client, path string) {
		resp, body := env.Get(t, c, path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s = %d", path, resp.StatusCode)
		}
		pages["GET "+path] = body
	}
	signedOut := env.Client()
	get(signedOut, "/login")
	get(signedOut, "/signup")
	resp, body := env.PostForm(t, signedOut, "/login", url.Values{"email": {handlertest.UniqueEmail(t, "visitor")}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /login = %d", resp.StatusCode)
	}
	pages["code page"] = body
	for _, p := range []string{
		"/dashboard", "/dashboard/apps/" + fx.App.Slug, "/dashboard/apps/" + fx.App.Slug + "/clients/" + fx.Client.ID,
		"/dashboard/apps/" + fx.App.Slug + "/usage", "/account", "/admin", "/admin/users", "/admin/clients", "/admin/audit",
	} {
		get(dev, p)
	}
	q := url.Values{"response_type": {"code"}, "client_id": {fx.Client.ID}, "redirect_uri": {fx.Client.RedirectURIs[0]},
		"state": {"s"}, "scope": {"openid email profile"}}
	get(dev, "/oauth/authorize?"+q.Encode())
	if !strings.Contains(pages["GET /oauth/authorize?"+q.Encode()], `name="decision"`) {
		t.Fatal("the authorize request did not show the consent page")
	}

	for name, body := range pages {
		for _, missing := range unlabelled(t, body) {
			t.Errorf("%s: %s has no label", name, missing)
		}
	}
}

// unlabelled returns a description of every form control without a label.
func unlabelled(t *testing.T, body string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	labelFor := map[string]bool{}
	type control struct {
		desc     string
		id       string
		labelled bool
	}
	var controls []control
	var walk func(n *html.Node, insideLabel bool)
	walk = func(n *html.Node, insideLabel bool) {
		if n.Type == html.ElementNode {
			attr := func(k string) string {
				for _, a := range n.Attr {
					if a.Key == k {
						return a.Val
					}
				}
				return ""
			}
			switch n.Data {
			case "label":
				if f := attr("for"); f != "" {
					labelFor[f] = true
				}
				insideLabel = true
			case "input", "select", "textarea":
				switch attr("type") {
				case "hidden", "submit", "button", "reset", "image":
				default:
					controls = append(controls, control{
						desc:     n.Data + `[name="` + attr("name") + `" id="` + attr("id") + `"]`,
						id:       attr("id"),
						labelled: insideLabel || attr("aria-label") != "" || attr("aria-labelledby") != "",
					})
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, insideLabel)
		}
	}
	walk(doc, false)
	var out []string
	for _, c := range controls {
		if !c.labelled && (c.id == "" || !labelFor[c.id]) {
			out = append(out, c.desc)
		}
	}
	return out
}

func TestUnlabelled_FindsMissingLabels(t *testing.T) {
	tests := []struct {
		html string
		want int
	}{
		{`<input name="q">`, 1},
		{`<select name="s"></select><textarea name="t"></textarea>`, 2},
		{`<label for="q">Search</label><input id="q" name="q">`, 0},
		{`<label>Search <input name="q"></label>`, 0},
		{`<input name="q" aria-label="Search">`, 0},
		{`<input type="hidden" name="h"><input type="submit">`, 0},
		{`<label for="other">X</label><input id="q" name="q">`, 1},
	}
	for _, tt := range tests {
		if got := unlabelled(t, tt.html); len(got) != tt.want {
			t.Errorf("unlabelled(%s) = %v, want %d", tt.html, got, tt.want)
		}
	}
}
