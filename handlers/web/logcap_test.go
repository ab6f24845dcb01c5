package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCapLogValue(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLen  int // bytes kept before the marker
		wantMark bool
	}{
		{"short", "hello", 5, false},
		{"exactly the cap", strings.Repeat("a", MaxLogValue), MaxLogValue, false},
		{"one over", strings.Repeat("a", MaxLogValue+1), MaxLogValue, true},
		{"cut inside a character", strings.Repeat("a", MaxLogValue-1) + "é" + strings.Repeat("b", 10), MaxLogValue - 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CapLogValue(tt.in)
			kept, _, marked := strings.Cut(got, "…(")
			if len(kept) != tt.wantLen || marked != tt.wantMark || !utf8.ValidString(got) {
				t.Errorf("CapLogValue(%d bytes) keeps %d bytes (marked %v, valid %v), want %d (marked %v)",
					len(tt.in), len(kept), marked, utf8.ValidString(got), tt.wantLen, tt.wantMark)
			}
		})
	}
}

// TestCapLog_BoundsEveryValue: strings, errors, groups, attributes added with With and
// the message are all cut; a panic's stack is kept.
func TestCapLog_BoundsEveryValue(t *testing.T) {
	var buf bytes.Buffer
	huge := strings.Repeat("x", 100_000)
	log := CapLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	if CapLog(log) != log {
		t.Error("CapLog wraps an already capped logger again")
	}
	log.With("with", huge).WithGroup("g").Warn(huge, "s", huge, "err", errors.New(huge), slog.Group("inner", "v", huge), "n", 42, "stack", huge)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log line is not JSON: %v", err)
	}
	g := line["g"].(map[string]any)
	for name, v := range map[string]any{"msg": line["msg"], "with": line["with"], "s": g["s"], "err": g["err"], "inner.v": g["inner"].(map[string]any)["v"]} {
		if s, _ := v.(string); len(s) > MaxLogValue+32 {
			t.Errorf("%s logged %d bytes, want at most about %d", name, len(s), MaxLogValue)
		}
	}
	if s, _ := g["stack"].(string); len(s) != len(huge) {
		t.Errorf("the stack was cut to %d bytes; it is the server's own text", len(s))
	}
	if g["n"] != float64(42) {
		t.Errorf("n = %v, want 42 (non-strings untouched)", g["n"])
	}
}
