package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authgpts/authgpts/store"
	"github.com/authgpts/authgpts/store/storetest"
)

func TestAnonymizeUsage_KeepsTotalsWithoutTheUser(t *testing.T) {
	t.Parallel()
	s := storetest.NewDB(t)
	ctx := context.Background()
	app := "5b9a3a55-6d0e-4b86-9c52-3b2f1f7a9e01"
	gone, other := "0b7c1f9e-1d1e-4c57-8a39-8c7cf1d5e8a2", "2f6d7a1c-8c4b-4b1e-9d3f-0e6a5b4c3d21"
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
