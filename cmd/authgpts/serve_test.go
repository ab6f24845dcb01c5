package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// TestServe_ShutdownWritesUsageEvenWhenTheDrainTimesOut: a stream still open when the
// drain deadline passes is cut, and the calls answered just before still reach the
// database: the final usage flush has a deadline of its own (with the drain's, expired,
// it failed and the instance's last events were lost).
func TestServe_ShutdownWritesUsageEvenWhenTheDrainTimesOut(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/sse") {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: hello\n\n")
			w.(http.Flusher).Flush()
			select { // an endless stream: it ends when the gateway cuts it
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(release) })

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	base := "http://" + addr
	vars := map[string]string{"DATABASE_URL": storetest.NewDSN(t), "AUTHGPTS_SECRET": cliSecret,
		"AUTHGPTS_BASE_URL": base, "AUTHGPTS_ADDR": addr}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"app", "create", "--owner", "ops@example.com", "--name", "Streams",
		"--kind", "service", "--upstream", up.URL}, env(vars), &out, &bytes.Buffer{}); err != nil {
		t.Fatalf("app create: %v", err)
	}
	var app struct {
		Slug         string `json:"slug"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		GatewayURL   string `json:"gateway_url"`
	}
	if err := json.Unmarshal(out.Bytes(), &app); err != nil {
		t.Fatal(err)
	}

	cfg, err := LoadConfig(env(vars))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 200 * time.Millisecond // the stream below outlives it
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- serve(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	client := &http.Client{}
	for { // until it listens (it migrates first); serve failing ends the loop too
		resp, err := client.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-served:
			t.Fatalf("serve ended before it was ready: %v", err)
		default:
		}
	}

	form := url.Values{"grant_type": {"client_credentials"}}
	req, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(app.ClientID, app.ClientSecret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if tok.AccessToken == "" {
		t.Fatalf("token endpoint = %d, no access token", resp.StatusCode)
	}
	call := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, app.GatewayURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	stream := call("/sse")
	defer stream.Body.Close()
	if line, err := bufio.NewReader(stream.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: hello") {
		t.Fatalf("stream: %q, %v", line, err)
	}
	// Calls answered just before the shutdown: still in the usage buffer (flushed every
	// second) when the drain ends.
	const calls = 5
	for range calls {
		resp := call("/x")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("gateway call = %d", resp.StatusCode)
		}
	}

	stop() // SIGTERM: the open stream outlives the drain
	if err := <-served; err == nil || !strings.Contains(err.Error(), "shutdown") {
		t.Errorf("serve = %v, want the drain's deadline reported", err)
	}
	st, err := store.Open(context.Background(), vars["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var stored int
	if err := st.DB().Get(&stored, `SELECT count(*) FROM usage_events e JOIN apps a ON a.id = e.app_id WHERE a.slug = $1 AND e.route = '/x' AND e.status = 200`, app.Slug); err != nil {
		t.Fatal(err)
	}
	if stored != calls {
		t.Errorf("%d calls stored after shutdown, want the %d answered", stored, calls)
	}
}
