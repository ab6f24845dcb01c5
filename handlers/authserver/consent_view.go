package authserver

import (
	"net/url"

	"github.com/authgpts/authgpts/oauth"
	"github.com/authgpts/authgpts/store"
	views "github.com/authgpts/authgpts/views/oauth"
)

// consentVM is what the consent page says about the client and the app it asks for: the
// app and its developer, the client's name, the host the user returns to and, for MCP
// clients, who vouches for the client (a metadata document's host, or nobody for an
// anonymous registration) and the resource (MCP server) the access is for.
func consentVM(client *clientEntry, b binding, redirectURI string) views.ConsentVM {
	vm := views.ConsentVM{
		AppName:        b.app.oa.App.Name,
		DeveloperEmail: b.app.oa.OwnerEmail,
		ClientName:     client.oc.Client.Name,
		RedirectHost:   redirectHost(redirectURI),
	}
	switch client.oc.Client.Origin {
	case store.ClientOriginMetadataDocument:
		vm.ClientOrigin = views.OriginMetadataDocument
		if u, err := url.Parse(client.oc.Client.ID); err == nil {
			vm.DocumentHost = u.Host
		}
	case store.ClientOriginRegistration:
		vm.ClientOrigin = views.OriginRegistration
	}
	if client.oc.Client.IsMCP() {
		vm.Resource = b.resource
		vm.LocalhostOnly = len(client.oc.Client.RedirectURIs) > 0
		for _, u := range client.oc.Client.RedirectURIs {
			if !oauth.IsLoopbackURI(u) {
				vm.LocalhostOnly = false
			}
		}
	}
	return vm
}
