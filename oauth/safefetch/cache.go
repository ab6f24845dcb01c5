package safefetch

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// CacheTTL says how long a fetched document may be reused, from its Cache-Control
// max-age (or Expires), clamped to [floor, ceiling]: the floor stops a client from
// making us refetch on every request, the ceiling bounds how long a changed document
// (say, a removed redirect URI) keeps working here. no-store and no-cache give the floor.
func CacheTTL(r Response, now time.Time, floor, ceiling time.Duration) time.Duration {
	ttl := time.Duration(-1)
	for _, directive := range strings.Split(r.CacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(strings.ToLower(directive)), "=")
		switch name {
		case "no-store", "no-cache":
			return floor
		case "max-age":
			if secs, err := strconv.ParseInt(strings.Trim(value, `"`), 10, 64); err == nil && secs >= 0 {
				ttl = time.Duration(secs) * time.Second
			}
		}
	}
	if ttl < 0 && r.Expires != "" {
		if exp, err := http.ParseTime(r.Expires); err == nil {
			ttl = exp.Sub(now)
		}
	}
	switch {
	case ttl < floor:
		return floor
	case ttl > ceiling:
		return ceiling
	}
	return ttl
}
