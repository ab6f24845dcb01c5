package gateway

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/authgpts/authgpts/store"
)

// usageBuffer holds usage events in memory until the flusher writes them in batches
// (one COPY per batch, never an INSERT per call). It is bounded: when the database
// cannot keep up for long, new events are dropped and counted rather than growing
// memory without limit.
type usageBuffer struct {
	st    *store.Store
	batch int
	max   int

	mu  sync.Mutex
	buf []store.UsageEvent

	flushMu sync.Mutex // one writer at a time, so Close's last flush waits for a running one
	kick    chan struct{}

	written, batches, dropped atomic.Int64
}

func newUsageBuffer(st *store.Store, batch, max int) *usageBuffer {
	return &usageBuffer{st: st, batch: batch, max: max, kick: make(chan struct{}, 1)}
}

// add queues one event; it never blocks on the database.
func (b *usageBuffer) add(e store.UsageEvent) {
	b.mu.Lock()
	if len(b.buf) >= b.max {
		b.mu.Unlock()
		b.dropped.Add(1)
		return
	}
	b.buf = append(b.buf, e)
	full := len(b.buf) >= b.batch
	b.mu.Unlock()
	if full {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

func (b *usageBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

// flush writes everything buffered, batch by batch. On an error the unwritten events go
// back to the front of the buffer (within its bound) for the next try.
func (b *usageBuffer) flush(ctx context.Context) error { return b.write(ctx, true) }

// flushFull writes only full batches (the buffer reached a batch while calls keep
// coming); the rest waits for the next batch or the periodic flush.
func (b *usageBuffer) flushFull(ctx context.Context) error { return b.write(ctx, false) }

func (b *usageBuffer) write(ctx context.Context, all bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	for {
		b.mu.Lock()
		n := len(b.buf)
		if !all {
			n -= n % b.batch
		}
		if n == 0 {
			b.mu.Unlock()
			return nil
		}
		pending := b.buf[:n:n]
		b.buf = append(make([]store.UsageEvent, 0, max(b.batch, len(b.buf)-n)), b.buf[n:]...)
		b.mu.Unlock()
		for i := 0; i < len(pending); i += b.batch {
			chunk := pending[i:min(i+b.batch, len(pending))]
			if err := b.st.InsertUsageEvents(ctx, chunk); err != nil {
				b.requeue(pending[i:])
				return err
			}
			b.written.Add(int64(len(chunk)))
			b.batches.Add(1)
		}
	}
}

func (b *usageBuffer) requeue(events []store.UsageEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	room := b.max - len(b.buf)
	if room < len(events) {
		b.dropped.Add(int64(len(events) - max(room, 0)))
		events = events[:max(room, 0)]
	}
	b.buf = append(append(make([]store.UsageEvent, 0, len(events)+len(b.buf)), events...), b.buf...)
}
