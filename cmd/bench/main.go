// Command bench is the load generator of `make bench`. Scenarios:
//
//	bench gateway   a call through the gateway vs the same call made directly to the
//	                upstream, at concurrency 1, 8 and 32 (see gateway.go)
//
// It needs DATABASE_URL (a PostgreSQL server it may create a database on).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"
)

func main() {
	fs := flag.NewFlagSet("bench", flag.ExitOnError)
	duration := fs.Duration("duration", 5*time.Second, "measuring time per scenario step")
	conc := fs.String("concurrency", "1,8,32", "comma-separated concurrency levels")
	scenario := "gateway"
	args := os.Args[1:]
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		scenario, args = args[0], args[1:]
	}
	_ = fs.Parse(args)
	var levels []int
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bench: bad -concurrency", s)
			os.Exit(2)
		}
		levels = append(levels, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch scenario {
	case "gateway":
		err = gatewayScenario(ctx, os.Getenv("DATABASE_URL"), levels, *duration, os.Stdout)
	default:
		err = fmt.Errorf("unknown scenario %q", scenario)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
