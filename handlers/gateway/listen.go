package gateway

import (
	"strings"

	"github.com/authgpts/authgpts/store"
)

// Notifications is the instance's shared LISTEN connection (notify.Listener): one per
// server, also used by the signing keys and the OAuth server's caches.
type Notifications interface {
	Subscribe(channel string, onNotify func(payload string), onResync func()) error
	OnConnection(watch func(up bool))
}

// subscribe LISTENs on store.RevocationsChannel and the portal's app-changed channel. Caches are
// used only while the connection is up: until both LISTENs are in effect, after a
// disconnect and until the reconnection has re-subscribed, every call is checked
// against the database, because a revocation sent meanwhile would be missed.
func (g *Gateway) subscribe(n Notifications) error {
	log := g.cfg.Log
	n.OnConnection(func(up bool) {
		if !up && g.tokens.isEnabled() {
			log.Warn("gateway: notification listener lost its connection; caches off until it reconnects")
		}
		// On reconnection the caches restart empty: anything sent meanwhile is unknown.
		g.setCaching(up)
	})
	if err := n.Subscribe(store.RevocationsChannel, g.revoke, nil); err != nil {
		return err
	}
	// Settings such as the MCP switch can end tokens' validity: an app-changed notice
	// drops the app and the tokens verified for it, as 'app:<id>' does.
	if err := n.Subscribe(store.ChannelAppChanged, func(appID string) { g.revoke("app:" + appID) }, nil); err != nil {
		return err
	}
	g.setCaching(true)
	return nil
}

func (g *Gateway) setCaching(on bool) {
	g.tokens.setEnabled(on)
	g.apps.setEnabled(on)
}

// revoke applies one revocation message: "grant:<id>", "client:<id>", "app:<id>",
// "user:<id>" or "apikey:<id>". Anything else empties the caches, which is always safe.
func (g *Gateway) revoke(msg string) {
	kind, id, _ := strings.Cut(msg, ":")
	if id == "" {
		kind = ""
	}
	switch kind {
	case "grant":
		// A personal API key lives only while its user has a live grant for the app:
		// personal keys are checked again too.
		g.tokens.evict(func(v *verified) bool { return v.claims.GrantID == id || v.keyID != "" && v.userID != "" })
	case "client":
		g.tokens.evict(func(v *verified) bool { return v.claims.ClientID == id })
	case "user":
		g.tokens.evict(func(v *verified) bool { return v.userID == id })
	case "apikey":
		g.tokens.evict(func(v *verified) bool { return v.keyID == id })
	case "app":
		g.apps.evictApp(id)
		g.tokens.evict(func(v *verified) bool { return v.appID == id })
	default:
		g.apps.evictApp("")
		g.tokens.evict(func(*verified) bool { return true })
	}
}
