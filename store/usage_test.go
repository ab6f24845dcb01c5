package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

func TestAnonymizeUsage_KeepsTotalsWithoutTheUser(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	app := "5b9a3a55-6d0e-4b86-9c52-3b2f1f7a9e01"
	gone, other := newUser(t, s, "gone"), newUser(t, s, "other")
	now := time.Now().UTC()
	var events []store.UsageEvent
	for i, u := range []string{gone, gone, other, ""} {
		events = append(events, store.UsageEvent{At: now, AppID: app, ClientID: "agpt_c", UserID: u, Method: "GET",
			Route: "/r", Status: 200, LatencyMicros: int64(1000 * (i + 1)), Credits: 1})
	}
	if err := s.InsertUsageEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RollUpUsage(ctx, 100); err != nil {
		t.Fatal(err)
	}
	if err := s.AnonymizeUsage(ctx, gone); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := s.DB().Get(&left, `SELECT (SELECT count(*) FROM usage_events WHERE user_id = $1) + (SELECT count(*) FROM usage_hourly WHERE user_id = $1)`, gone); err != nil {
		t.Fatal(err)
	}
	rows, err := s.UsageHourlyByApp(ctx, app, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var calls, nilCalls int64
	for _, r := range rows {
		calls += r.Calls
		if r.UserID == store.NilUserID {
			nilCalls = r.Calls
		}
	}
	if left != 0 || calls != 4 || nilCalls != 3 || len(rows) != 2 {
		t.Errorf("rows of the deleted user left: %d; hourly %+v", left, rows)
	}
}

// A batch with a row PostgreSQL refuses is written not at all, and its error says so
// (ErrRejected, so the caller isolates the row rather than retrying the batch) without
// the refused value.
func TestInsertUsageEvents_RefusedRowIsErrRejected(t *testing.T) {
	s := storetest.NewDB(t)
	ctx := context.Background()
	app := "5b9a3a55-6d0e-4b86-9c52-3b2f1f7a9e02"
	ok := store.UsageEvent{At: time.Now().UTC(), AppID: app, ClientID: "agpt_c", Method: "GET", Route: "/r", Status: 200}
	tests := []struct {
		name string
		bad  func(*store.UsageEvent)
	}{
		{"NUL in route", func(e *store.UsageEvent) { e.Route = "/a\x00secret" }},
		{"invalid UTF-8 in method", func(e *store.UsageEvent) { e.Method = "G\xffsecret" }},
		{"app ID not a UUID", func(e *store.UsageEvent) { e.AppID = "secret" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := ok
			tt.bad(&bad)
			err := s.InsertUsageEvents(ctx, []store.UsageEvent{ok, bad, ok})
			if !errors.Is(err, store.ErrRejected) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("InsertUsageEvents() = %v, want ErrRejected naming no value", err)
			}
			var n int
			if err := s.DB().Get(&n, `SELECT count(*) FROM usage_events WHERE app_id = $1`, app); err != nil || n != 0 {
				t.Errorf("%d events stored (%v), want none of the refused batch", n, err)
			}
		})
	}
}

func newUser(t *testing.T, s *store.Store, name string) string {
	t.Helper()
	u, err := s.EnsureUser(context.Background(), name+"-"+time.Now().Format("150405.000000000")+"@example.test")
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// waitBlockedOrDone waits until a backend of this database waits for a lock, or done
// closes (the statement did not block at all).
func waitBlockedOrDone(t *testing.T, s *store.Store, done <-chan struct{}) {
	t.Helper()
	for {
		var n int
		if err := s.DB().Get(&n, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		select {
		case <-done:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// A usage batch written while the user's deletion is under way (on another instance)
// waits for it and then writes the events without the user.
func TestInsertUsageEvents_DuringADeletionWritesNoUser(t *testing.T) {
	s := storetest.NewDB(t)
	ctx := context.Background()
	app := "5b9a3a55-6d0e-4b86-9c52-3b2f1f7a9e02"
	user := newUser(t, s, "leaving")
	del, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer del.Rollback()
	if _, err := del.Exec(`SELECT id FROM users WHERE id = $1 FOR UPDATE`, user); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var insertErr error
	go func() {
		defer close(done)
		insertErr = s.InsertUsageEvents(ctx, []store.UsageEvent{{At: time.Now(), AppID: app, ClientID: "agpt_c", UserID: user,
			Method: "GET", Route: "/r", Status: 200, LatencyMicros: 10, Credits: 1}})
	}()
	waitBlockedOrDone(t, s, done)
	if _, err := del.Exec(`DELETE FROM users WHERE id = $1`, user); err != nil {
		t.Fatal(err)
	}
	if err := del.Commit(); err != nil {
		t.Fatal(err)
	}
	<-done
	if insertErr != nil {
		t.Fatal(insertErr)
	}
	var linked, total int
	_ = s.DB().Get(&linked, `SELECT count(*) FROM usage_events WHERE user_id = $1`, user)
	_ = s.DB().Get(&total, `SELECT count(*) FROM usage_events WHERE app_id = $1`, app)
	if linked != 0 || total != 1 {
		t.Errorf("%d events name the deleted user (want 0), %d events stored (want 1)", linked, total)
	}
}

// A deletion that starts while a usage batch of the user is being written (on another
// instance) waits for the batch and anonymises its events too.
func TestDeleteUser_WaitsForABatchBeingWrittenAndAnonymisesIt(t *testing.T) {
	s := storetest.NewDB(t)
	ctx := context.Background()
	app := "5b9a3a55-6d0e-4b86-9c52-3b2f1f7a9e03"
	userID := newUser(t, s, "leaving")
	u, err := s.UserByID(ctx, userID)
	if err != nil {
		t.Fatal(err)
	}
	// The batch as InsertUsageEvents writes it: the user locked, then the COPY.
	batch, err := s.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer batch.Rollback()
	if _, err := batch.Exec(`SELECT id FROM users WHERE id = ANY($1::uuid[]) FOR KEY SHARE`, pq.Array([]string{userID})); err != nil {
		t.Fatal(err)
	}
	if _, err := batch.Exec(`INSERT INTO usage_events (at, app_id, user_id, method, route, status, latency_us) VALUES (now(), $1, $2, 'GET', '/r', 200, 10)`, app, userID); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var delErr error
	go func() {
		defer close(done)
		delErr = s.DeleteUser(ctx, u, time.Now())
	}()
	waitBlockedOrDone(t, s, done)
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	<-done
	if delErr != nil {
		t.Fatal(delErr)
	}
	var linked, total int
	_ = s.DB().Get(&linked, `SELECT count(*) FROM usage_events WHERE user_id = $1`, userID)
	_ = s.DB().Get(&total, `SELECT count(*) FROM usage_events WHERE app_id = $1`, app)
	if linked != 0 || total != 1 {
		t.Errorf("%d events name the deleted user (want 0), %d events stored (want 1)", linked, total)
	}
}
