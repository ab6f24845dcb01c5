package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/authgpts/authgpts/store"
)

// usageRejected counts, for /metrics, the usage events PostgreSQL refused and the
// buffer dropped (see usageBuffer.insert).
var usageRejected = promauto.NewCounter(prometheus.CounterOpts{
	Name: "authgpts_gateway_usage_events_rejected_total",
	Help: "Gateway usage events the database refused (invalid content) and that were dropped.",
})

// usageBuffer holds usage events in memory until the flusher writes them in batches
// (one COPY per batch, never an INSERT per call). It is bounded: when the database
// cannot keep up for long, new events are dropped and counted rather than growing
// memory without limit. A row PostgreSQL refuses never holds up the others: its batch
// is split until the row is alone, and that row is dropped and counted.
type usageBuffer struct {
	st    *store.Store
	log   *slog.Logger
	batch int
	max   int

	mu  sync.Mutex
	buf []store.UsageEvent

	flushMu sync.Mutex // one writer at a time, so Close's last flush waits for a running one
	kick    chan struct{}

	written, batches, dropped, rejected atomic.Int64
}

func newUsageBuffer(st *store.Store, log *slog.Logger, batch, max int) *usageBuffer {
	return &usageBuffer{st: st, log: log, batch: batch, max: max, kick: make(chan struct{}, 1)}
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

// flush writes everything buffered, batch by batch. When the database cannot be written
// the unwritten events go back to the front of the buffer (within its bound) for the
// next try; events it refuses for their content are dropped (see insert).
func (b *usageBuffer) flush(ctx context.Context) error { return b.write(ctx, true) }

// flushFull writes only full batches (the buffer reached a batch while calls keep
// coming); the rest waits for the next batch or the periodic flush.
func (b *usageBuffer) flushFull(ctx context.Context) error { return b.write(ctx, false) }

func (b *usageBuffer) write(ctx context.Context, all bool) error {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	var rejected int
	var rejectErr error
	defer func() {
		// One line per flush, however many rows it dropped; the error names the SQLSTATE
		// only, never a value (a route is whatever the caller sent).
		if rejected > 0 {
			b.log.Error("gateway: usage events refused by the database were dropped", "rejected", rejected, "err", rejectErr)
		}
	}()
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
			done, err := b.insert(ctx, chunk, &rejected, &rejectErr)
			if err != nil {
				b.requeue(pending[i+done:])
				return err
			}
		}
	}
}

// insert writes events and returns how many of them are done with (written, or
// refused and dropped) from the front; err is set when the database could not be
// written, and then events[done:] are still to be written. A batch PostgreSQL refuses
// for its content (store.ErrRejected) is split in halves until each refused row is
// alone: k bad rows in a batch of n cost about 2k·log2(n) more COPYs, and every good
// row is written.
func (b *usageBuffer) insert(ctx context.Context, events []store.UsageEvent, rejected *int, rejectErr *error) (int, error) {
	err := b.st.InsertUsageEvents(ctx, events)
	switch {
	case err == nil:
		b.written.Add(int64(len(events)))
		b.batches.Add(1)
		return len(events), nil
	case !errors.Is(err, store.ErrRejected):
		return 0, err
	case len(events) == 1:
		b.rejected.Add(1)
		usageRejected.Inc()
		*rejected++
		if *rejectErr == nil {
			*rejectErr = err
		}
		return 1, nil
	}
	mid := len(events) / 2
	done, err := b.insert(ctx, events[:mid], rejected, rejectErr)
	if err != nil {
		return done, err
	}
	done, err = b.insert(ctx, events[mid:], rejected, rejectErr)
	return mid + done, err
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
