// Package pgcluster runs a throwaway local PostgreSQL cluster with initdb and pg_ctl,
// for development (cmd/devdb) and for tests that need a server of their own, for
// example to stop and restart it under load.
//
// PostgreSQL refuses to run as root, so as root every server command runs through
// `runuser -u postgres --` on a data directory owned by that user.
package pgcluster

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

	_ "github.com/lib/pq" // the admin connection of CreateDatabase
)

// Cluster is a PostgreSQL cluster whose data lives under Dir/data.
type Cluster struct {
	Dir string
	// Stock starts the server with PostgreSQL's stock durability settings, as a
	// production server runs (make bench); by default fsync, synchronous_commit and
	// full_page_writes are off, which is fast and loses or corrupts the cluster in a crash.
	Stock bool
	data  string
	bin   string
	port  int
}

// Open finds the PostgreSQL binaries and returns the cluster in dir, creating it
// (initdb, a free port remembered in dir/port) when dir holds none. It does not start it.
func Open(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, data: filepath.Join(dir, "data"), bin: bin}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(); err != nil {
			return nil, err
		}
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, "port"))
	if err != nil {
		return nil, fmt.Errorf("cluster in %s has no port file; delete the directory to recreate it", c.Dir)
	}
	if c.port, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
		return nil, fmt.Errorf("cluster in %s: bad port file: %w", c.Dir, err)
	}
	return c, nil
}

// Exists reports whether dir holds a cluster.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION"))
	return err == nil
}

// DSN is the URL of database db on the cluster.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Start starts the server and waits until it accepts connections. Durability is off
// unless c.Stock: the cluster is for development and tests.
func (c *Cluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=400", c.port, c.data)
	if !c.Stock {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	if err := c.pg("pg_ctl", "-D", c.data, "-l", c.logFile(), "-o", opts, "-w", "-t", "60", "start"); err != nil {
		return fmt.Errorf("pg_ctl start failed (see %s): %w", c.logFile(), err)
	}
	return nil
}

func (c *Cluster) logFile() string { return filepath.Join(c.data, "server.log") }

// Stop stops the server in the given shutdown mode ("smart", "fast" or "immediate")
// and waits until it has stopped.
func (c *Cluster) Stop(mode string) error {
	return c.pg("pg_ctl", "-D", c.data, "-m", mode, "-w", "stop")
}

// Restart stops the server in the given mode and starts it again (pg_ctl restart),
// returning once it accepts connections.
func (c *Cluster) Restart(mode string) error {
	// -l as at Start: without it the new server writes to pg_ctl's output, which would
	// then never be closed.
	return c.pg("pg_ctl", "-D", c.data, "-l", c.logFile(), "-m", mode, "-w", "-t", "60", "restart")
}

// Running reports whether the server is running.
func (c *Cluster) Running() bool {
	return c.pg("pg_ctl", "-D", c.data, "status") == nil
}

// CreateDatabase creates database name unless it exists.
func (c *Cluster) CreateDatabase(name string) error {
	db, err := sql.Open("postgres", c.DSN("postgres"))
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

func (c *Cluster) initdb() error {
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
		for p := c.Dir; p != "/"; p = filepath.Dir(p) {
			if err := c.pg("test", "-x", p); err != nil {
				return fmt.Errorf("the postgres user cannot enter %s; put the cluster in a world-traversable directory", p)
			}
		}
	}
	// Pick the port once, at creation, and remember it next to the data directory.
	port, err := freePort()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "port"), []byte(strconv.Itoa(port)), 0o644); err != nil {
		return err
	}
	return c.pg("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C")
}

// pg runs a PostgreSQL command, as the postgres user when we are root.
func (c *Cluster) pg(name string, args ...string) error {
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
		if name == "test" || (name == "pg_ctl" && len(args) > 0 && args[len(args)-1] == "status") {
			return err
		}
		return fmt.Errorf("%s: %w\n%s", name, err, out.String())
	}
	return nil
}

func asRoot() bool { return os.Geteuid() == 0 }

func binDir() (string, error) {
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
