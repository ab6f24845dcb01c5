package authserver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// tokensIssued counts token responses by grant type. client_credentials tokens write
// nothing to the database, so this counter is the only record of how many were issued.
var tokensIssued = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "authgpts_tokens_issued_total",
	Help: "Token endpoint successes by grant type.",
}, []string{"grant_type"})
