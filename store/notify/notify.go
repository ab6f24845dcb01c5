// Package notify is the instance's one PostgreSQL LISTEN connection (Listener): key
// rotations, client and app changes and revocations from other instances arrive on it,
// and a reconnect tells every subscriber to resync.
package notify

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/lib/pq"
)

// Listener is the instance's one PostgreSQL LISTEN connection, shared by every
// subscriber (signing keys, the client cache, revocations). It reconnects by itself;
// after a reconnect every subscriber's resync function runs, because notifications sent
// while the connection was down are lost.
type Listener struct {
	pq   *pq.Listener
	log  *slog.Logger
	mu   sync.Mutex
	subs map[string][]subscription
	conn []func(up bool) // connection watchers, see OnConnection
	done chan struct{}
}

type subscription struct {
	onNotify func(payload string)
	onResync func()
}

// NewListener connects to dsn and dispatches notifications until ctx ends.
func NewListener(ctx context.Context, dsn string, log *slog.Logger) *Listener {
	if log == nil {
		log = slog.Default()
	}
	l := &Listener{log: log, subs: make(map[string][]subscription), done: make(chan struct{})}
	l.pq = pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil {
			log.Warn("notification listener", "event", ev.String(), "err", err)
		}
		if ev == pq.ListenerEventDisconnected || ev == pq.ListenerEventConnectionAttemptFailed {
			l.setConnected(false)
		}
	})
	go l.run(ctx)
	return l
}

// Subscribe calls onNotify with the payload of every notification on channel, and
// onResync after a reconnection. It returns once the LISTEN is in effect, so a change
// committed after Subscribe returns is seen. Callbacks run on the dispatch goroutine:
// keep them short (hand slow work to another goroutine).
func (l *Listener) Subscribe(channel string, onNotify func(payload string), onResync func()) error {
	l.mu.Lock()
	first := len(l.subs[channel]) == 0
	l.subs[channel] = append(l.subs[channel], subscription{onNotify: onNotify, onResync: onResync})
	l.mu.Unlock()
	if !first {
		return nil
	}
	if err := l.pq.Listen(channel); err != nil && !errors.Is(err, pq.ErrChannelAlreadyOpen) {
		return err
	}
	return nil
}

// OnConnection calls watch(false) when the connection is lost (notifications may be
// missed from then on) and watch(true) once it is back and every subscriber has
// resynchronised. Caches that must not serve revoked entries switch off in between.
func (l *Listener) OnConnection(watch func(up bool)) {
	l.mu.Lock()
	l.conn = append(l.conn, watch)
	l.mu.Unlock()
}

func (l *Listener) setConnected(up bool) {
	l.mu.Lock()
	watchers := append([]func(bool){}, l.conn...)
	l.mu.Unlock()
	for _, w := range watchers {
		w(up)
	}
}

// Done is closed when the listener has stopped.
func (l *Listener) Done() <-chan struct{} { return l.done }

func (l *Listener) run(ctx context.Context) {
	defer close(l.done)
	defer l.pq.Close()
	ping := time.NewTicker(60 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-l.pq.Notify:
			if n == nil {
				l.resync()
				continue
			}
			l.dispatch(n.Channel, n.Extra)
		case <-ping.C:
			// A dead TCP connection is only noticed when written to (lib/pq docs).
			go func() { _ = l.pq.Ping() }()
		}
	}
}

func (l *Listener) dispatch(channel, payload string) {
	l.mu.Lock()
	subs := l.subs[channel]
	l.mu.Unlock()
	for _, s := range subs {
		if s.onNotify != nil {
			s.onNotify(payload)
		}
	}
}

func (l *Listener) resync() {
	l.mu.Lock()
	var all []subscription
	for _, subs := range l.subs {
		all = append(all, subs...)
	}
	l.mu.Unlock()
	l.log.Info("notification listener reconnected; resynchronising caches")
	for _, s := range all {
		if s.onResync != nil {
			s.onResync()
		}
	}
	// lib/pq re-runs every LISTEN before it delivers the reconnection marker.
	l.setConnected(true)
}
