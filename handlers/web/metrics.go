package web

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Request metrics for /metrics. Labels use the route pattern (never the raw path, whose
// slugs and IDs would make the label set unbounded) and the status class.
var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "authgpts_http_requests_total",
		Help: "HTTP requests by route pattern, method and status class.",
	}, []string{"route", "method", "status"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "authgpts_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route"})
)

// Metrics records every request's route, status class and latency.
func Metrics() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		class := strconv.Itoa(c.Writer.Status()/100) + "xx"
		httpRequests.WithLabelValues(route, c.Request.Method, class).Inc()
		httpDuration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	}
}
