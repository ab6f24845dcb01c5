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
// PostgreSQL refuses to run as root, so as root every server command runs through
// `runuser -u postgres --` on a data directory owned by that user.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq"
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
	dir, err := filepath.Abs(args[1])
	if err != nil {
		return err
	}
	bin, err := pgBinDir()
	if err != nil {
		return err
	}
	c := cluster{dir: dir, data: filepath.Join(dir, "data"), bin: bin, stock: stock}
	if args[0] == "stop" {
		return c.stop()
	}
	dsn, err := c.start()
	if err != nil {
		return err
	}
	fmt.Println(dsn)
	return nil
}

type cluster struct {
	dir, data, bin string
	stock          bool // PostgreSQL's stock durability settings instead of the fast ones
}

func (c cluster) start() (string, error) {
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(); err != nil {
			return "", err
		}
	}
	port, err := c.port()
	if err != nil {
		return "", err
	}
	if !c.running() {
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=400", port, c.data)
		if !c.stock {
			opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		}
		if err := c.pg("pg_ctl", "-D", c.data, "-l", filepath.Join(c.data, "server.log"), "-o", opts, "-w", "-t", "60", "start"); err != nil {
			return "", fmt.Errorf("pg_ctl start failed (see %s): %w", filepath.Join(c.data, "server.log"), err)
		}
	}
	base := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%%s?sslmode=disable", port)
	if err := createDatabase(fmt.Sprintf(base, "postgres"), "authgpts"); err != nil {
		return "", err
	}
	return fmt.Sprintf(base, "authgpts"), nil
}

func (c cluster) stop() error {
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); err != nil {
		return nil // nothing to stop
	}
	if !c.running() {
		return nil
	}
	return c.pg("pg_ctl", "-D", c.data, "-m", "fast", "-w", "stop")
}

func (c cluster) running() bool {
	return c.pg("pg_ctl", "-D", c.data, "status") == nil
}

func (c cluster) initdb() error {
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return err
	}
	if asRoot() {
		u, err := user.Lookup("postgres")
		if err != nil {
			return errors.New("running as root needs the 'postgres' system user (install the postgresql package)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(c.data, uid, gid); err != nil {
			return err
		}
		// The postgres user must be able to reach the data directory through its parents.
		for p := c.dir; p != "/"; p = filepath.Dir(p) {
			if err := c.pg("test", "-x", p); err != nil {
				return fmt.Errorf("the postgres user cannot enter %s; put the checkout in a world-traversable directory", p)
			}
		}
	}
	// Pick the port once, at creation, and remember it next to the data directory.
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.dir, "port"), []byte(strconv.Itoa(port)), 0o644); err != nil {
		return err
	}
	return c.pg("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
}

func (c cluster) port() (int, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "port"))
	if err != nil {
		return 0, fmt.Errorf("cluster in %s has no port file; delete the directory to recreate it", c.dir)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// pg runs a PostgreSQL command, as the postgres user when we are root.
func (c cluster) pg(name string, args ...string) error {
	path := name
	if name != "test" {
		path = filepath.Join(c.bin, name)
	}
	var cmd *exec.Cmd
	if asRoot() {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if name == "pg_ctl" && len(args) > 0 && args[len(args)-1] == "status" {
			return err
		}
		if name == "test" {
			return err
		}
		return fmt.Errorf("%s: %w\n%s", name, err, out.String())
	}
	return nil
}

func asRoot() bool { return os.Geteuid() == 0 }

func pgBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("no PostgreSQL server binaries found (apt-get install postgresql)")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func createDatabase(adminDSN, name string) error {
	db, err := sql.Open("postgres", adminDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("connect to the local cluster: %w", err)
	}
	if exists {
		return nil
	}
	_, err = db.ExecContext(ctx, fmt.Sprintf(`CREATE DATABASE %q`, name))
	return err
}
