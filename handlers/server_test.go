package handlers_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers"
	"github.com/authgpts/authgpts/handlers/gateway"
	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// TestShutdown_WritesUsageWhenTheDrainTimesOut: a stream still open when the drain's
// deadline passes is cut, and the calls the instance answered still reach the database.
// The final usage flush has a deadline of its own: with the drain's, expired by then, it
// failed and every event the instance still held was lost.
func TestShutdown_WritesUsageWhenTheDrainTimesOut(t *testing.T) {
	env := handlertest.New(t)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/sse") {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: hello\n\n")
			w.(http.Flusher).Flush()
			select { // an endless stream, until the gateway cuts it
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
	app := env.NewApp(t, handlertest.UniqueEmail(t, "ops"), store.ClientKindService)
	if _, err := env.Store.DB().Exec(`UPDATE apps SET upstream_url = $2 WHERE id = $1`, app.App.ID, up.URL); err != nil {
		t.Fatal(err)
	}
	token := env.ServiceToken(t, app, "").Access

	// A second instance on the same database, as serve runs it, that holds every usage
	// event until it shuts down.
	cfg := env.Config
	cfg.Gateway = func(c *gateway.Config) {
		c.RollupInterval, c.UsageFlushInterval, c.UsageBatchSize = -1, time.Hour, 1<<20
	}
	srv, err := handlers.NewServer(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	base := "http://" + l.Addr().String() + "/gw/" + app.App.Slug
	call := func(path string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	stream := call("/sse")
	defer stream.Body.Close()
	if line, err := bufio.NewReader(stream.Body).ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: hello") {
		t.Fatalf("stream = %d: %q, %v", stream.StatusCode, line, err)
	}
	const calls = 5
	for range calls {
		resp := call("/x")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("gateway call = %d", resp.StatusCode)
		}
	}

	// SIGTERM with a short drain: the stream outlives it.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); err == nil || !strings.Contains(err.Error(), "shutdown") || strings.Contains(err.Error(), "usage") {
		t.Errorf("Shutdown = %v, want only the drain's deadline reported", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	var stored int
	if err := env.Store.DB().Get(&stored, `SELECT count(*) FROM usage_events WHERE app_id = $1 AND route = '/x' AND status = 200`, app.App.ID); err != nil {
		t.Fatal(err)
	}
	if stored != calls {
		t.Errorf("%d calls stored after the shutdown, want the %d answered", stored, calls)
	}
}

// TestServer_HeaderBlockIsBounded: a request whose headers pass MaxHeaderBytes is
// answered 431 by the server serve runs, and the next request is served as usual.
func TestServer_HeaderBlockIsBounded(t *testing.T) {
	env := handlertest.New(t)
	srv, err := handlers.NewServer(context.Background(), env.Config)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	get := func(header string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+l.Addr().String()+"/healthz", nil)
		req.Header.Set("X-Padding", header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(strings.Repeat("a", handlers.MaxHeaderBytes+8<<10)); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("headers of %d KiB = %d, want 431", handlers.MaxHeaderBytes>>10+8, got)
	}
	if got := get(strings.Repeat("a", 16<<10)); got != http.StatusOK {
		t.Errorf("headers of 16 KiB = %d, want 200", got)
	}
}
