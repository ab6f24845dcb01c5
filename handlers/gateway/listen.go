package gateway

import (
	"strings"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/store"
)

// startListener LISTENs on RevocationChannel. Caches are used only while the listener is
// connected: before the first LISTEN succeeds, after a disconnect, and until a reconnect
// has re-subscribed, every call is checked against the database, because a revocation
// sent meanwhile would be missed.
func (g *Gateway) startListener() {
	log := g.cfg.Log
	g.listener = pq.NewListener(g.cfg.DatabaseURL, 100*time.Millisecond, 5*time.Second,
		func(ev pq.ListenerEventType, err error) {
			switch ev {
			case pq.ListenerEventDisconnected, pq.ListenerEventConnectionAttemptFailed:
				if g.tokens.isEnabled() {
					log.Warn("gateway: revocation listener lost its connection; caches off until it reconnects", "err", err)
				}
				g.setCaching(false)
			case pq.ListenerEventReconnected:
				// resync has re-run LISTEN before this event: anything sent while we
				// were away is unknown, so start from empty caches.
				g.setCaching(true)
				log.Info("gateway: revocation listener reconnected; caches flushed")
			}
		})
	l := g.listener
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		// Listen returns once LISTEN has run on a live connection. The portal announces
		// app edits on store.ChannelAppChanged, so new settings apply at once.
		for _, ch := range []string{RevocationChannel, store.ChannelAppChanged} {
			if err := l.Listen(ch); err != nil {
				select {
				case <-g.stop:
				default:
					log.Error("gateway: LISTEN failed; caches stay off", "channel", ch, "err", err)
				}
				return
			}
		}
		g.setCaching(true)
	}()
	go func() {
		defer g.wg.Done()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-g.stop:
				return
			case n, ok := <-l.Notify:
				if !ok {
					return
				}
				if n == nil { // reconnected: notifications may have been lost
					g.setCaching(true)
					continue
				}
				if n.Channel == store.ChannelAppChanged {
					// Settings such as the MCP switch can end tokens' validity: drop
					// the app and the tokens verified for it, as for 'app:<id>'.
					g.revoke("app:" + n.Extra)
					continue
				}
				g.revoke(n.Extra)
			case <-ping.C:
				// A dead TCP connection is only noticed when used.
				go func() { _ = l.Ping() }()
			}
		}
	}()
}

func (g *Gateway) setCaching(on bool) {
	g.tokens.setEnabled(on)
	g.apps.setEnabled(on)
}

// revoke applies one revocation message: "grant:<id>", "client:<id>", "app:<id>" or
// "user:<id>". Anything else empties the caches, which is always safe.
func (g *Gateway) revoke(msg string) {
	kind, id, _ := strings.Cut(msg, ":")
	if id == "" {
		kind = ""
	}
	switch kind {
	case "grant":
		g.tokens.evict(func(v *verified) bool { return v.claims.GrantID == id })
	case "client":
		g.tokens.evict(func(v *verified) bool { return v.claims.ClientID == id })
	case "user":
		g.tokens.evict(func(v *verified) bool { return v.claims.GrantID != "" && v.claims.Subject == id })
	case "app":
		g.apps.evictApp(id)
		g.tokens.evict(func(v *verified) bool { return v.appID == id })
	default:
		g.apps.evictApp("")
		g.tokens.evict(func(*verified) bool { return true })
	}
}
