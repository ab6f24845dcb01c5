package ginresource_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/oauth/resource"
	"github.com/authgpts/authgpts/oauth/resource/ginresource"
	"github.com/authgpts/authgpts/store"
)

// TestRequire_Gin: a Gin API behind ginresource.Require accepts a token from the real
// AuthGPTs token endpoint, verified with the server's published JWKS.
func TestRequire_Gin(t *testing.T) {
	env := handlertest.New(t)
	app := env.NewApp(t, handlertest.UniqueEmail(t, "dev"), store.ClientKindGPT, "https://chatgpt.com/aip/g-gin/oauth/callback")
	if err := env.Store.CreateScope(context.Background(), app.Owner.ID, app.App.ID, store.Scope{Name: "notes.read", Description: "Read notes"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	v, err := resource.New(resource.Config{Issuer: env.BaseURL, Audience: []string{env.BaseURL + "/gw/" + app.App.Slug}})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.GET("/notes", ginresource.Require(v, "notes.read"), func(c *gin.Context) {
		claims, ok := ginresource.Claims(c)
		fromCtx, ok2 := resource.FromContext(c.Request.Context())
		if !ok || !ok2 || fromCtx.Subject != claims.Subject {
			t.Error("claims missing")
		}
		c.JSON(200, gin.H{"user": claims.Subject})
	})
	api := httptest.NewServer(r)
	defer api.Close()

	tok := env.UserToken(t, app, handlertest.UniqueEmail(t, "user"), "openid notes.read").Access
	narrow := env.UserToken(t, app, handlertest.UniqueEmail(t, "user2"), "openid").Access
	for _, tc := range []struct {
		auth string
		want int
	}{{"Bearer " + tok, 200}, {"", 401}, {"Bearer nope", 401}, {"Bearer " + narrow, 403}} {
		req, _ := http.NewRequest("GET", api.URL+"/notes", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want != 200 && resp.Header.Get("WWW-Authenticate") == "") {
			t.Errorf("%.20q: %d %v", tc.auth, resp.StatusCode, resp.Header)
		}
	}
}
