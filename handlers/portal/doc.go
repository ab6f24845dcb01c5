// Package portal is the developer portal: a signed-in developer's apps, their OAuth
// clients, scopes and settings, and the values to paste into the GPT editor.
//
// Every route is behind web.RequireUser. Every lookup and change names the signed-in
// developer as owner, so another developer's app or client answers 404 on every route,
// by GET and by POST. Every change writes an audit row in the same transaction.
//
// Pages:
//
//	GET  /dashboard                                  the developer's apps and the "New app" form
//	POST /dashboard/apps                             create an app → its GPT setup page (secret shown once)
//	GET  /dashboard/apps/:slug                       app page: connect values, clients, scopes, settings
//	GET  /dashboard/apps/:slug/clients/:client       client page: values, redirect URIs, secrets
//
// HTMX endpoints; each answers with exactly the region it changes (and, out of band,
// the regions that depend on it), 422 with the form kept for validation errors:
//
//	POST /dashboard/apps/:slug/settings              #app-settings (+ #app-header, #connect-panel)
//	POST /dashboard/apps/:slug/delete                #danger-zone on 422, else HX-Redirect /dashboard
//	POST /dashboard/apps/:slug/scopes                #scope-list (+ #connect-panel)
//	POST /dashboard/apps/:slug/scopes/update         #scope-list (+ #connect-panel)
//	POST /dashboard/apps/:slug/scopes/delete         #scope-list (+ #connect-panel)
//	POST /dashboard/apps/:slug/clients               #client-list (+ #connect-panel); a secret shown once
//	POST /dashboard/apps/:slug/prices                #prices (+ #connect-panel): add a route price
//	POST /dashboard/apps/:slug/prices/delete         #prices (+ #connect-panel)
//	POST /dashboard/apps/:slug/plan                  #prices (+ #connect-panel): monthly allowance, top-up URL
//	POST /dashboard/apps/:slug/keys                  #api-keys; the new developer key shown once
//	POST /dashboard/apps/:slug/keys/revoke           #api-keys; the key stops on every instance
//	POST /dashboard/apps/:slug/connections           #connection-list; the provider secret is sealed, never shown
//	POST /dashboard/apps/:slug/connections/delete    #connection-list
//	POST /dashboard/apps/:slug/clients/:client/name                   #client-name
//	POST /dashboard/apps/:slug/clients/:client/redirect-uris          #redirect-uris
//	POST /dashboard/apps/:slug/clients/:client/redirect-uris/presets  #redirect-uris (known AI callbacks)
//	POST /dashboard/apps/:slug/clients/:client/redirect-uris/delete   #redirect-uris
//	POST /dashboard/apps/:slug/clients/:client/secret                 #client-secret; new secret shown once
//	POST /dashboard/apps/:slug/clients/:client/delete                 HX-Redirect to the app page
//
// :client is the client ID itself when it is made of [A-Za-z0-9_-], else "~" and its
// base64url form (client IDs from metadata documents are URLs); see ClientRef.
// A form posted without htmx gets the same region inside the page chrome.
package portal
