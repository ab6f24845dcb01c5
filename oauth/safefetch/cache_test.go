package safefetch

import (
	"net/http"
	"testing"
	"time"
)

func TestCacheTTL(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	floor, ceiling := time.Minute, 24*time.Hour
	tests := []struct {
		name string
		r    Response
		want time.Duration
	}{
		{"no headers", Response{}, floor},
		{"max-age", Response{CacheControl: "public, max-age=3600"}, time.Hour},
		{"max-age below floor", Response{CacheControl: "max-age=5"}, floor},
		{"max-age above ceiling", Response{CacheControl: "max-age=9999999"}, ceiling},
		{"no-store", Response{CacheControl: "no-store, max-age=3600"}, floor},
		{"expires", Response{Expires: now.Add(2 * time.Hour).Format(http.TimeFormat)}, 2 * time.Hour},
		{"garbage", Response{CacheControl: "max-age=soon", Expires: "tomorrow"}, floor},
	}
	for _, tt := range tests {
		if got := CacheTTL(tt.r, now, floor, ceiling); got != tt.want {
			t.Errorf("%s: CacheTTL() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
