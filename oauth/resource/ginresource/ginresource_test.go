package ginresource_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/oauth/resource"
	"github.com/authgpts/authgpts/oauth/resource/ginresource"
)

func TestRequire_Gin(t *testing.T) {
	key, err := oauth.GenerateKey(oauth.AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	ks := oauth.NewKeySet(key)
	var issuer string
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "jwks_uri": issuer + "/jwks"})
			return
		}
		_, _ = w.Write(ks.JWKS())
	}))
	defer as.Close()
	issuer = as.URL
	v, err := resource.New(resource.Config{Issuer: issuer, Audience: []string{issuer + "/gw/notes"}})
	if err != nil {
		t.Fatal(err)
	}
	gin.SetMode(gin.ReleaseMode)
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

	now := time.Now()
	tok, _ := ks.SignAccessToken(oauth.AccessClaims{Issuer: issuer, Subject: "u1", ClientID: "c", JTI: "j", Scope: "notes.read",
		Audience: []string{issuer + "/gw/notes"}, IssuedAt: now, Expiry: now.Add(time.Hour)})
	for _, tc := range []struct {
		auth string
		want int
	}{{"Bearer " + tok, 200}, {"", 401}, {"Bearer nope", 401}} {
		req, _ := http.NewRequest("GET", api.URL+"/notes", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want || (tc.want == 401 && resp.Header.Get("WWW-Authenticate") == "") {
			t.Errorf("%q: %d %v", tc.auth, resp.StatusCode, resp.Header)
		}
	}
}
