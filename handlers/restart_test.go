package handlers_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// outcome is one answer of the restart test, classified.
type outcome struct {
	ok          bool // the answer the endpoint gives with its database up
	unavailable bool // a well-formed 503: temporarily_unavailable JSON or an error page, with Retry-After
	problem     string
}

// probe is one kind of request the instances serve while the database restarts.
type probe struct {
	name string
	// mustTouchDB: with the database stopped the answer can only be the 503 (nothing is
	// served from memory).
	mustTouchDB bool
	do          func(c *http.Client, base string) outcome
}

// TestDatabaseRestart_ClearAnswersAndRecovery (issue 14's fault test, issue 16 item 2):
// two instances on a PostgreSQL cluster of the test's own serve token, introspection,
// revocation, userinfo and page requests from concurrent clients while the cluster is
// restarted (pg_ctl restart -m fast). Every answer is the normal one or a clear 503:
// JSON temporarily_unavailable with Retry-After from machine endpoints, an error page
// with Retry-After from pages; never a 500, never a hang (each request is bounded). With
// the cluster stopped every request that needs the database gets that 503, and once it
// is back each instance answers normally again without being restarted.
func TestDatabaseRestart_ClearAnswersAndRecovery(t *testing.T) {
	cluster := storetest.NewCluster(t)
	env := handlertest.New(t, func(c *handlers.Config) { c.DatabaseURL = storetest.NewDSNOn(t, cluster.DSN("postgres")) })
	_, second := handlertest.StartInstance(t, env.Config)
	instances := []string{env.BaseURL, second.URL}

	dev := handlertest.UniqueEmail(t, "dev")
	gpt := env.NewApp(t, dev, store.ClientKindGPT, "https://chatgpt.com/aip/g-restart/oauth/callback")
	svc := env.NewApp(t, dev, store.ClientKindService)
	userEmail := handlertest.UniqueEmail(t, "user")
	browser := env.SignIn(t, userEmail)
	tokens := env.UserTokenFor(t, browser, gpt, "")
	browser.Timeout = 5 * time.Second // a hang fails the request, and so the test
	machine := &http.Client{Timeout: 5 * time.Second}

	post := func(c *http.Client, target string, form url.Values, id, secret string) (*http.Response, []byte, error) {
		req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if id != "" {
			req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		}
		return send(c, req)
	}
	probes := []probe{
		{"token: client_credentials", false, func(c *http.Client, base string) outcome {
			resp, body, err := post(c, base+oauth.PathToken, url.Values{"grant_type": {"client_credentials"}}, svc.Client.ID, svc.Secret)
			return machineOutcome(resp, body, err, http.StatusOK, "access_token")
		}},
		{"token: unknown refresh token", true, func(c *http.Client, base string) outcome {
			resp, body, err := post(c, base+oauth.PathToken, url.Values{"grant_type": {"refresh_token"},
				"refresh_token": {oauth.NewToken(oauth.PrefixRefreshToken)}}, gpt.Client.ID, gpt.Secret)
			return machineOutcome(resp, body, err, http.StatusBadRequest, `"invalid_grant"`)
		}},
		{"introspect: refresh token", true, func(c *http.Client, base string) outcome {
			resp, body, err := post(c, base+oauth.PathIntrospect, url.Values{"token": {tokens.Refresh}}, gpt.Client.ID, gpt.Secret)
			return machineOutcome(resp, body, err, http.StatusOK, `"active":true`)
		}},
		{"revoke: unknown refresh token", true, func(c *http.Client, base string) outcome {
			resp, body, err := post(c, base+oauth.PathRevoke, url.Values{"token": {oauth.NewToken(oauth.PrefixRefreshToken)}}, gpt.Client.ID, gpt.Secret)
			return machineOutcome(resp, body, err, http.StatusOK, "")
		}},
		{"userinfo", false, func(c *http.Client, base string) outcome {
			req, _ := http.NewRequest(http.MethodGet, base+oauth.PathUserInfo, nil)
			req.Header.Set("Authorization", "Bearer "+tokens.Access)
			resp, body, err := send(c, req)
			return machineOutcome(resp, body, err, http.StatusOK, `"sub"`)
		}},
		{"page: /account", true, func(_ *http.Client, base string) outcome {
			req, _ := http.NewRequest(http.MethodGet, base+"/account", nil)
			resp, body, err := send(browser, req)
			return pageOutcome(resp, body, err, userEmail)
		}},
	}
	run := func(p probe, base string) outcome {
		o := p.do(machine, base)
		if o.problem != "" {
			o.problem = fmt.Sprintf("%s at %s: %s", p.name, base, o.problem)
		}
		return o
	}
	everyProbe := func(f func(p probe, base string)) {
		for _, base := range instances {
			for _, p := range probes {
				f(p, base)
			}
		}
	}
	// recovered waits until every probe answers normally on every instance: the
	// instances must get there by themselves, within a bound.
	recovered := func(phase string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		everyProbe(func(p probe, base string) {
			for {
				o := run(p, base)
				if o.problem != "" {
					t.Error(o.problem)
				}
				if o.ok {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %s at %s still does not answer normally 20 s after the database came back", phase, p.name, base)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}

	// 1. Under load, the cluster restarts.
	everyProbe(func(p probe, base string) {
		if o := run(p, base); !o.ok {
			t.Fatalf("before the restart, %s at %s: %+v", p.name, base, o)
		}
	})
	var (
		mu       sync.Mutex
		problems []string
		counts   = map[string]int{}
		wg       sync.WaitGroup
		stop     = make(chan struct{})
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p, base := probes[i%len(probes)], instances[(i/len(probes))%len(instances)]
				o := run(p, base)
				mu.Lock()
				switch {
				case o.problem != "":
					problems = append(problems, o.problem)
				case o.unavailable:
					counts["503"]++
				default:
					counts["ok"]++
				}
				mu.Unlock()
			}
		}()
	}
	if err := cluster.Restart("fast"); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("pg_ctl restart: %v", err)
	}
	recovered("after pg_ctl restart -m fast")
	close(stop)
	wg.Wait()
	for i, p := range problems {
		if i == 10 {
			t.Errorf("… and %d more", len(problems)-i)
			break
		}
		t.Error(p)
	}
	t.Logf("under load across the restart: %d normal answers, %d clear 503s, %d problems", counts["ok"], counts["503"], len(problems))

	// 2. With the cluster stopped, everything that needs it is a clear 503.
	if err := cluster.Stop("fast"); err != nil {
		t.Fatalf("pg_ctl stop: %v", err)
	}
	everyProbe(func(p probe, base string) {
		o := run(p, base)
		switch {
		case o.problem != "":
			t.Error("database stopped: " + o.problem)
		case p.mustTouchDB && !o.unavailable:
			t.Errorf("database stopped: %s at %s answered normally; want a 503", p.name, base)
		}
	})
	if err := cluster.Start(); err != nil {
		t.Fatalf("pg_ctl start: %v", err)
	}
	recovered("after pg_ctl stop and start")
}

// send does a request and reads the whole answer.
func send(c *http.Client, req *http.Request) (*http.Response, []byte, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// machineOutcome classifies an OAuth endpoint's answer: okStatus with okBody in it is
// normal, and the only other acceptable answer is 503 temporarily_unavailable JSON with
// Retry-After.
func machineOutcome(resp *http.Response, body []byte, err error, okStatus int, okBody string) outcome {
	if err != nil {
		return outcome{problem: "no answer: " + err.Error()}
	}
	if resp.StatusCode == okStatus && strings.Contains(string(body), okBody) {
		return outcome{ok: true}
	}
	var e struct {
		Error string `json:"error"`
	}
	if resp.StatusCode == http.StatusServiceUnavailable && json.Unmarshal(body, &e) == nil && e.Error == "temporarily_unavailable" &&
		strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.Header.Get("Retry-After") != "" {
		return outcome{unavailable: true}
	}
	return outcome{problem: fmt.Sprintf("%d %s (Retry-After %q) %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), body)}
}

// pageOutcome classifies a page: 200 showing the signed-in user, or a 503 error page
// with Retry-After (never a sign-out, a 500 or a hang).
func pageOutcome(resp *http.Response, body []byte, err error, email string) outcome {
	if err != nil {
		return outcome{problem: "no answer: " + err.Error()}
	}
	html := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")
	switch {
	case resp.StatusCode == http.StatusOK && html && strings.Contains(string(body), email):
		return outcome{ok: true}
	case resp.StatusCode == http.StatusServiceUnavailable && html && resp.Header.Get("Retry-After") != "" &&
		strings.Contains(string(body), "briefly unavailable"):
		return outcome{unavailable: true}
	}
	return outcome{problem: fmt.Sprintf("%d %s (Retry-After %q, Location %q) %.200s", resp.StatusCode, resp.Header.Get("Content-Type"),
		resp.Header.Get("Retry-After"), resp.Header.Get("Location"), body)}
}
