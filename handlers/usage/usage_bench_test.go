package usage_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/authgpts/authgpts/handlers/handlertest"
	"github.com/authgpts/authgpts/store"
)

// BenchmarkUsagePage_MillionEvents seeds one million gateway events over 30 days (200
// users, 2 clients, 20 routes), rolls them up with the real roll-up job, then measures
// the usage page for each range. Run with: go test -run x -bench UsagePage ./handlers/usage/
func BenchmarkUsagePage_MillionEvents(b *testing.B) {
	env := handlertest.New(b)
	devEmail := handlertest.UniqueEmail(b, "dev")
	fx := env.NewApp(b, devEmail, store.ClientKindGPT)
	ctx := context.Background()
	db := env.Store.DB()
	if _, err := db.ExecContext(ctx, `INSERT INTO users (email) SELECT 'bench-' || i || '@example.com' FROM generate_series(1, 200) i`); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	_, err := db.ExecContext(ctx, `
		INSERT INTO usage_events (at, app_id, client_id, user_id, method, route, status, latency_us, credits)
		SELECT now() - (i % 43200) * interval '1 minute', $1,
		       CASE WHEN i % 3 = 0 THEN 'other-client' ELSE $2 END,
		       (SELECT id FROM users WHERE email = 'bench-' || (1 + i % 200) || '@example.com'),
		       'GET', '/route/' || (i % 20), CASE WHEN i % 50 = 0 THEN 502 WHEN i % 20 = 0 THEN 404 ELSE 200 END,
		       500 + (i % 5000), 1
		  FROM generate_series(1, 1000000) i`, fx.App.ID, fx.Client.ID)
	if err != nil {
		b.Fatal(err)
	}
	for {
		n, err := env.Store.RollUpUsage(ctx, 100_000)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	b.Logf("seeded and rolled up 1,000,000 events in %s", time.Since(start).Round(time.Millisecond))
	// Autovacuum would do this in production; it sets the visibility map that lets the
	// distinct-user counts run as index-only scans.
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	c := env.SignIn(b, devEmail)
	for _, r := range []string{"24h", "7d", "30d"} {
		b.Run(r, func(b *testing.B) {
			for b.Loop() {
				resp, err := c.Get(env.BaseURL + "/dashboard/apps/" + fx.App.Slug + "/usage?range=" + r)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
