package resource_test

import (
	"fmt"
	"net/http"

	"github.com/authgpts/authgpts/oauth/resource"
)

// The README's middleware example, compiled with the tests.
func ExampleVerifier_Require() {
	v, _ := resource.New(resource.Config{
		Issuer:           "https://auth.example.com",
		Audience:         []string{"https://auth.example.com/gw/notes"},
		ResourceMetadata: "https://auth.example.com/.well-known/oauth-protected-resource/gw/notes",
	})
	http.Handle("/notes", v.Require("notes.read")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, _ := resource.FromContext(r.Context())
		fmt.Fprintf(w, "notes of %s\n", claims.Subject)
	})))
	// http.ListenAndServe(":9000", nil)
}
