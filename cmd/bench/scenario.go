package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
)

// Scenario is one kind of request (or flow) the load generator measures. Scenarios
// register themselves from their own files with Register, in an init function, so a new
// one (the gateway, say) is one new file:
//
//	func init() {
//		Register(Scenario{Name: "gateway", Order: 60, Setup: func(ctx context.Context, env *Env) (NewWorker, error) {
//			… seed with env.NewApp / env.SignedInClient, then:
//			return func(worker int) (Op, error) {
//				return func(ctx context.Context) error { … one request … }, nil
//			}, nil
//		}})
//	}
type Scenario struct {
	Name  string
	Order int // position in the report (lower first)
	// Setup seeds what the scenario needs, once, and returns the constructor of the
	// per-worker operation (workers may keep state, e.g. a refresh-token chain).
	Setup func(ctx context.Context, env *Env) (NewWorker, error)
	// Standalone, instead of Setup, runs a scenario that measures and reports by itself
	// (it may start its own server in this process); env.DatabaseURL is set.
	Standalone func(ctx context.Context, env *Env, levels []int, lim Limits, out io.Writer) error
}

// NewWorker builds worker number id's operation.
type NewWorker func(id int) (Op, error)

// Op performs one measured operation; an error counts as a failed request.
type Op func(ctx context.Context) error

var (
	registryMu sync.Mutex
	registry   = map[string]Scenario{}
)

// Register adds a scenario; names must be unique.
func Register(s Scenario) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[s.Name]; dup {
		panic(fmt.Sprintf("bench: scenario %q registered twice", s.Name))
	}
	registry[s.Name] = s
}

// scenarios returns the registered scenarios in report order.
func scenarios() []Scenario {
	registryMu.Lock()
	defer registryMu.Unlock()
	out := make([]Scenario, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Order != out[j].Order {
			return out[i].Order < out[j].Order
		}
		return out[i].Name < out[j].Name
	})
	return out
}
