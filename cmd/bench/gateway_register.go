package main

import (
	"context"
	"io"
)

// The gateway's scenario (gateway.go) measures a call through the gateway against the
// same call made directly to a local upstream, with a server it starts in this process.
func init() {
	Register(Scenario{Name: "gateway", Order: 60, Standalone: func(ctx context.Context, env *Env, levels []int, lim Limits, out io.Writer) error {
		return gatewayScenario(ctx, env.DatabaseURL, levels, lim.Duration, env.UpstreamDelay, env.GatewayUsers, out)
	}})
}
