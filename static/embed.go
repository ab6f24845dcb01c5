// Package static embeds the built CSS, vendored htmx, our small script and images, and
// serves them under content-hashed names so they can be cached forever.
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed app.css app.js htmx.min.js favicon.svg
var files embed.FS

// Prefix is the URL path the assets are served under.
const Prefix = "/static/"

type asset struct {
	name        string
	body        []byte
	contentType string
}

var (
	byName   = map[string]string{} // "app.css" -> "/static/app.3f2a9c1d.css"
	byHashed = map[string]asset{}  // "app.3f2a9c1d.css" -> asset
)

func init() {
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		body, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		ext := path.Ext(e.Name())
		hashed := strings.TrimSuffix(e.Name(), ext) + "." + hex.EncodeToString(sum[:])[:12] + ext
		byName[e.Name()] = Prefix + hashed
		byHashed[hashed] = asset{name: e.Name(), body: body, contentType: mime.TypeByExtension(ext)}
	}
}

// URL returns the cache-busting URL of an embedded file, e.g. URL("app.css").
func URL(name string) string {
	if u, ok := byName[name]; ok {
		return u
	}
	panic("static: no embedded file " + name)
}

// Handler serves the hashed files with a one-year immutable cache lifetime.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := byHashed[strings.TrimPrefix(r.URL.Path, Prefix)]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(a.body)
	})
}
