package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

// syncBuffer is a log sink safe for the flusher's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Rows PostgreSQL refuses (here a malformed UUID and a NUL byte, built straight into the
// buffer, past the gateway's own cleaning) are isolated and dropped: every other event
// of their batches and of the batches behind them is written, a database that cannot be
// reached drops nothing, and the log line names no refused value.
func TestUsageBuffer_RejectedRowsDoNotBlockTheRest(t *testing.T) {
	st := storetest.NewDB(t)
	ctx := context.Background()
	var logs syncBuffer
	b := newUsageBuffer(st, slog.New(slog.NewTextHandler(&logs, nil)), 100, 10_000)
	app := "8a0e5a52-3a9f-4c35-8f44-6f1f7c1b7a13"
	now := time.Now().UTC()
	good := func(i int) store.UsageEvent {
		return store.UsageEvent{At: now, AppID: app, ClientID: "agpt_c", Method: "GET", Route: "/r", Status: 200, LatencyMicros: int64(i), Credits: 1}
	}
	const n = 1000
	for i := range n {
		e := good(i)
		switch i {
		case 3:
			e.AppID = "agsec_not_a_uuid_secret" // 22P02 invalid_text_representation
		case 517:
			e.Route = "/a\x00b-agsec_secret_route" // 22021 character_not_in_repertoire
		}
		b.add(e)
	}
	if err := b.flush(ctx); err != nil {
		t.Fatalf("flush() = %v, want the good rows written and the refused ones dropped", err)
	}
	if w, r, l := b.written.Load(), b.rejected.Load(), b.len(); w != n-2 || r != 2 || l != 0 {
		t.Fatalf("written %d, rejected %d, buffered %d; want %d, 2, 0", w, r, l, n-2)
	}

	// The database is unreachable (here: the context is gone): nothing is dropped, the
	// events wait for the next flush.
	for i := range 10 {
		b.add(good(i))
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.flush(cancelled); err == nil {
		t.Fatal("flush with a cancelled context succeeded")
	}
	if r, l := b.rejected.Load(), b.len(); r != 2 || l != 10 {
		t.Fatalf("after a failed flush: rejected %d, buffered %d; want 2 and the 10 events kept", r, l)
	}
	// The last flush (as at shutdown) writes them.
	if err := b.flush(ctx); err != nil {
		t.Fatalf("last flush: %v", err)
	}
	var stored int
	if err := st.DB().Get(&stored, `SELECT count(*) FROM usage_events WHERE app_id = $1`, app); err != nil {
		t.Fatal(err)
	}
	if stored != n-2+10 {
		t.Errorf("stored %d events, want %d", stored, n-2+10)
	}
	out := logs.String()
	if c := strings.Count(out, "refused by the database"); c != 1 {
		t.Errorf("%d log lines about refused rows, want 1 for the one flush that dropped them:\n%s", c, out)
	}
	if strings.Contains(out, "agsec_") {
		t.Errorf("the log holds a refused value:\n%s", out)
	}
}
