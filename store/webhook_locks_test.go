package store_test

import (
	"context"
	"testing"
	"time"
)

// A webhook attempt being recorded (the delivery updated, then its endpoint, as the
// worker's statement does) while the app is deleted: the deletion waits for it instead
// of deadlocking with it, and both succeed. Without the deletion locking the deliveries
// first, its cascade held the endpoint and waited for the delivery while the worker held
// the delivery and waited for the endpoint, and PostgreSQL aborted one of them.
func TestDeleteApp_WaitsForAWebhookAttemptInsteadOfDeadlocking(t *testing.T) {
	t.Parallel()
	f := newPortalFixture(t)
	ctx := context.Background()
	db := f.s.DB()
	const endpoint = "6f1c9b7e-0000-4000-8000-000000000001"
	const delivery = "6f1c9b7e-0000-4000-8000-000000000002"
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO webhook_endpoints (id, app_id, url, events, secret_sealed, secret_hint, created_at, updated_at)
		  VALUES ($1, $2, 'https://hooks.example.com/x', '{user.connected}', '\x00', 'h', now(), now())`, []any{endpoint, f.app.ID}},
		{`INSERT INTO webhook_events (id, app_id, type, payload, created_at) VALUES ('msg_lock_test', $1, 'user.connected', '{}', now())`, []any{f.app.ID}},
		{`INSERT INTO webhook_deliveries (id, event_id, endpoint_id, next_attempt_at, created_at)
		  VALUES ($1, 'msg_lock_test', $2, now(), now())`, []any{delivery, endpoint}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}

	worker, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Rollback()
	if _, err := worker.Exec(`UPDATE webhook_deliveries SET attempts = 1 WHERE id = $1`, delivery); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- f.s.DeleteApp(ctx, f.owner.ID, f.app.ID) }()
	// Wait until the deletion waits for a lock the worker holds.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := db.Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-deleted:
			t.Fatalf("DeleteApp returned (%v) while the worker held the delivery", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the deletion never waited for the worker's lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := worker.Exec(`UPDATE webhook_endpoints SET failing_since = now() WHERE id = $1`, endpoint); err != nil {
		t.Fatalf("the worker's endpoint update: %v", err)
	}
	if err := worker.Commit(); err != nil {
		t.Fatalf("the worker's commit: %v", err)
	}
	if err := <-deleted; err != nil {
		t.Fatalf("DeleteApp while an attempt was recorded: %v", err)
	}
	if _, err := f.s.AppByID(ctx, f.app.ID); err == nil {
		t.Error("the app survived its deletion")
	}
}
