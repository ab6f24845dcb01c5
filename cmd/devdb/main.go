// Command devdb runs a throwaway local PostgreSQL cluster for development and tests.
//
//	devdb start [-stock] DIR   initdb DIR (first time only), start it, create database
//	                           "authgpts", and print its URL on stdout
//	devdb stop DIR             stop the cluster in DIR
//
// By default the cluster runs without durability (fsync, synchronous_commit and
// full_page_writes off): fast for throwaway test clusters, and a crash loses or corrupts
// it. -stock starts it with PostgreSQL's stock durability settings, as a production
// server runs: `make bench` uses it so its figures are the ones users get. The settings
// apply when the cluster starts; one already running keeps its own.
//
// The cluster itself is store/pgcluster's (initdb and pg_ctl, through runuser as root).
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/authgpts/authgpts/store/pgcluster"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devdb:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	stock := false
	if len(args) == 3 && args[0] == "start" && args[1] == "-stock" {
		stock, args = true, []string{args[0], args[2]}
	}
	if len(args) != 2 || (args[0] != "start" && args[0] != "stop") {
		return errors.New("usage: devdb start [-stock] DIR | devdb stop DIR")
	}
	dir := args[1]
	if args[0] == "stop" {
		if !pgcluster.Exists(dir) {
			return nil // nothing to stop
		}
		c, err := pgcluster.Open(dir)
		if err != nil || !c.Running() {
			return err
		}
		return c.Stop("fast")
	}
	c, err := pgcluster.Open(dir)
	if err != nil {
		return err
	}
	c.Stock = stock
	if !c.Running() {
		if err := c.Start(); err != nil {
			return err
		}
	}
	if err := c.CreateDatabase("authgpts"); err != nil {
		return err
	}
	fmt.Println(c.DSN("authgpts"))
	return nil
}
