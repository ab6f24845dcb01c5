package loadcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCache_KeepsUntilTTLAndMergesConcurrentLoads(t *testing.T) {
	c := New[int](time.Minute, 100)
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var loads atomic.Int32
	release := make(chan struct{})
	load := func(context.Context) (int, error) { loads.Add(1); <-release; return 7, nil }
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if v, err := c.Get(context.Background(), "k", now, load); v != 7 || err != nil {
				t.Errorf("Get() = %d, %v", v, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := loads.Load(); n != 1 {
		t.Fatalf("10 concurrent Gets ran %d loads, want 1", n)
	}
	c.Get(context.Background(), "k", now.Add(59*time.Second), load)
	if n := loads.Load(); n != 1 {
		t.Errorf("a fresh entry was loaded again (%d loads)", n)
	}
	c.Get(context.Background(), "k", now.Add(time.Minute), load)
	if n := loads.Load(); n != 2 {
		t.Errorf("an expired entry was not reloaded (%d loads)", n)
	}
}

func TestCache_LoadRacingAnInvalidationIsNotKept(t *testing.T) {
	c := New[string](time.Minute, 100)
	now := time.Now()
	started, finish := make(chan struct{}), make(chan struct{})
	go func() { <-started; c.Evict(func(string, string) bool { return true }); close(finish) }()
	v, _ := c.Get(context.Background(), "k", now, func(context.Context) (string, error) {
		close(started)
		<-finish // the invalidation lands while this stale read is in flight
		return "stale", nil
	})
	if v != "stale" || c.Len() != 0 {
		t.Fatalf("Get() = %q with %d kept, want the value returned once and not kept", v, c.Len())
	}
}

func TestCache_EvictDisableErrorsAndBound(t *testing.T) {
	c := New[int](time.Minute, 3)
	now := time.Now()
	val := func(n int) func(context.Context) (int, error) {
		return func(context.Context) (int, error) { return n, nil }
	}
	for i, k := range []string{"a", "b", "c"} {
		c.Get(context.Background(), k, now, val(i))
	}
	c.Evict(func(k string, v int) bool { return v == 1 })
	if c.Len() != 2 {
		t.Fatalf("after evicting one of three: %d entries", c.Len())
	}
	c.Get(context.Background(), "d", now, val(3))
	c.Get(context.Background(), "e", now, val(4))
	if c.Len() > 3 {
		t.Errorf("%d entries, want at most 3", c.Len())
	}
	if _, err := c.Get(context.Background(), "x", now, func(context.Context) (int, error) { return 0, errors.New("db down") }); err == nil {
		t.Error("a load error was not returned")
	}
	c.SetEnabled(false)
	var loads int
	for range 2 {
		c.Get(context.Background(), "a", now, func(context.Context) (int, error) { loads++; return 1, nil })
	}
	if loads != 2 || c.Len() != 0 || c.Enabled() {
		t.Errorf("disabled cache: %d loads, %d kept; want every Get to load and nothing kept", loads, c.Len())
	}
}

// With RefreshAhead a hot key is reloaded in the background before it expires: callers
// get the cached value meanwhile (none waits for the load), one reload runs however many
// callers come, and past the TTL nothing stale is served.
func TestCache_RefreshAheadReloadsWithoutMakingCallersWait(t *testing.T) {
	const ttl = 5 * time.Second
	c := New[int](ttl, 100).RefreshAhead(time.Second)
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ctx := context.Background()
	if v, _ := c.Get(ctx, "k", t0, func(context.Context) (int, error) { return 1, nil }); v != 1 {
		t.Fatalf("first Get() = %d", v)
	}
	var reloads atomic.Int32
	started, release := make(chan struct{}), make(chan struct{})
	reload := func(context.Context) (int, error) {
		if reloads.Add(1) == 1 {
			close(started)
		}
		<-release // the reload is slow: callers must not wait for it
		return 2, nil
	}
	soon := t0.Add(ttl - 500*time.Millisecond)
	if v, _ := c.Get(ctx, "k", t0.Add(ttl-2*time.Second), reload); v != 1 || reloads.Load() != 0 {
		t.Fatalf("before the window: Get() = %d with %d reloads, want 1 and none", v, reloads.Load())
	}
	for range 10 {
		if v, err := c.Get(ctx, "k", soon, reload); v != 1 || err != nil {
			t.Fatalf("in the window: Get() = %d, %v; want the cached 1", v, err)
		}
	}
	<-started
	close(release)
	c.group.Do("k", func() (any, error) { return nil, nil }) // joins the reload if it is still running
	if n := reloads.Load(); n != 1 {
		t.Errorf("%d background reloads, want 1", n)
	}
	if v, _ := c.Get(ctx, "k", t0.Add(ttl+time.Second), func(context.Context) (int, error) { return 3, nil }); v != 2 {
		t.Errorf("after the old entry's expiry: Get() = %d, want the reloaded 2 (kept for a full TTL from the reload)", v)
	}
	if v, _ := c.Get(ctx, "k", soon.Add(2*ttl), func(context.Context) (int, error) { return 4, nil }); v != 4 {
		t.Errorf("past every TTL: Get() = %d, want a fresh load (4), never a stale value", v)
	}
}
