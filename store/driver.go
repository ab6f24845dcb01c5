package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"reflect"
	"syscall"

	"github.com/lib/pq"
)

// The pool's connections are lib/pq connections behind a thin guard, for one driver bug.
//
// lib/pq v1.12.3 reads any ErrorResponse longer than 30,000 bytes as the plain-text
// error a server sends when it cannot fork a backend (upstream issue lib/pq#1324, fixed
// on its master by #1327, in no release yet): it returns "pq: server error: …" after
// reading only the message's first field and leaves the rest of it on the socket,
// without marking the connection bad. PostgreSQL echoes the offending value in many
// errors ("invalid input syntax for type uuid: "…"", the DETAIL of a unique or check
// violation), so one request carrying a long value gets such an error; its connection
// goes back to the pool out of step with the server, and the next query on it reads a
// stray piece of text as a message length and waits for a gigabyte that never comes.
// That was the hang after a long POST /account/grants/<id>/revoke.
//
// guardedConn drops such a connection instead: an error that is not a server error
// (*pq.Error), nor a cancellation, leaves it in an unknown state, so it refuses further
// use (driver.ErrBadConn) and reports itself invalid, and database/sql closes it rather
// than reusing it. Remove this file when a lib/pq release carries the fix.

// The guard is also the one place that classifies driver errors: an error that says the
// database cannot be reached (refused, reset or dropped connections, a server shutting
// down or starting up) is wrapped so that errors.Is(err, ErrUnavailable) holds, whatever
// the store code around it does with it.

// openConnector is the pool's connector: lib/pq's, with every connection guarded.
func openConnector(dsn string) (driver.Connector, error) {
	c, err := pq.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return guardedConnector{c}, nil
}

type guardedConnector struct{ driver.Connector }

func (g guardedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := g.Connector.Connect(ctx)
	if err != nil {
		// A connection that could not be made in time is the database being unreachable.
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, unavailableError{err}
		}
		return nil, classify(err)
	}
	return &guardedConn{Conn: c}, nil
}

// unavailableError is a driver error that means the database is unreachable; it
// unwraps to both ErrUnavailable and the driver's error (so database/sql still sees
// driver.ErrBadConn, and mapErr a *pq.Error).
type unavailableError struct{ err error }

func (e unavailableError) Error() string   { return e.err.Error() }
func (e unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// classify wraps err when it says the database is unreachable.
func classify(err error) error {
	if err == nil || !unreachable(err) {
		return err
	}
	return unavailableError{err}
}

func unreachable(err error) bool {
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "57P01", // admin_shutdown: terminating connection due to administrator command
			"57P02", // crash_shutdown
			"57P03", // cannot_connect_now: the database system is starting up / shutting down
			"53300": // too_many_connections
			return true
		}
		return pqErr.Code.Class() == "08" // connection_exception
	}
	var netErr net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &netErr)
}

// inUnknownState reports whether err, returned by a driver call, may have left the
// connection out of step with the server. io.EOF is the end of the rows.
func inUnknownState(err error) bool {
	if err == nil || err == io.EOF || errors.Is(err, driver.ErrBadConn) || errors.Is(err, driver.ErrSkip) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pqErr *pq.Error
	return !errors.As(err, &pqErr)
}

// guardedConn is a lib/pq connection that is never used again once a call has failed in
// a way that may have desynchronised it. database/sql uses a connection from one
// goroutine at a time, so broken needs no lock.
type guardedConn struct {
	driver.Conn
	broken bool
}

// check notes a connection left in an unknown state and classifies the error.
func (g *guardedConn) check(err error) error {
	if inUnknownState(err) {
		g.broken = true
	}
	return classify(err)
}

func (g *guardedConn) Prepare(query string) (driver.Stmt, error) {
	return g.PrepareContext(context.Background(), query)
}

func (g *guardedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	if g.broken {
		return nil, driver.ErrBadConn
	}
	var st driver.Stmt
	var err error
	if p, ok := g.Conn.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = g.Conn.Prepare(query)
	}
	if err != nil {
		return nil, g.check(err)
	}
	return &guardedStmt{Stmt: st, conn: g}, nil
}

func (g *guardedConn) Begin() (driver.Tx, error) {
	return g.BeginTx(context.Background(), driver.TxOptions{})
}

func (g *guardedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if g.broken {
		return nil, driver.ErrBadConn
	}
	tx, err := g.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, g.check(err)
	}
	return guardedTx{tx: tx, conn: g}, nil
}

func (g *guardedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if g.broken {
		return nil, driver.ErrBadConn
	}
	rows, err := g.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	if err != nil {
		return nil, g.check(err)
	}
	return &guardedRows{Rows: rows, conn: g}, nil
}

func (g *guardedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if g.broken {
		return nil, driver.ErrBadConn
	}
	res, err := g.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	return res, g.check(err)
}

func (g *guardedConn) Ping(ctx context.Context) error {
	if g.broken {
		return driver.ErrBadConn
	}
	return g.check(g.Conn.(driver.Pinger).Ping(ctx))
}

func (g *guardedConn) CheckNamedValue(nv *driver.NamedValue) error {
	return g.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}

func (g *guardedConn) ResetSession(ctx context.Context) error {
	if g.broken {
		return driver.ErrBadConn
	}
	return g.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (g *guardedConn) IsValid() bool {
	return !g.broken && g.Conn.(driver.Validator).IsValid()
}

// guardedTx never sends COMMIT or ROLLBACK on a broken connection: it would wait for an
// answer that cannot be read. database/sql then closes the connection, and the server
// rolls the transaction back.
type guardedTx struct {
	tx   driver.Tx
	conn *guardedConn
}

func (t guardedTx) Commit() error {
	if t.conn.broken {
		return driver.ErrBadConn
	}
	return t.conn.check(t.tx.Commit())
}

func (t guardedTx) Rollback() error {
	if t.conn.broken {
		return driver.ErrBadConn
	}
	return t.conn.check(t.tx.Rollback())
}

type guardedStmt struct {
	driver.Stmt
	conn *guardedConn
}

func (s *guardedStmt) Close() error {
	if s.conn.broken {
		return nil // the connection is closed with everything on it
	}
	return s.conn.check(s.Stmt.Close())
}

func (s *guardedStmt) Exec(args []driver.Value) (driver.Result, error) {
	if s.conn.broken {
		return nil, driver.ErrBadConn
	}
	res, err := s.Stmt.Exec(args) //nolint:staticcheck // the COPY statement implements only Exec
	return res, s.conn.check(err)
}

func (s *guardedStmt) Query(args []driver.Value) (driver.Rows, error) {
	if s.conn.broken {
		return nil, driver.ErrBadConn
	}
	rows, err := s.Stmt.Query(args) //nolint:staticcheck // as Exec
	if err != nil {
		return nil, s.conn.check(err)
	}
	return &guardedRows{Rows: rows, conn: s.conn}, nil
}

func (s *guardedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		if s.conn.broken {
			return nil, driver.ErrBadConn
		}
		res, err := e.ExecContext(ctx, args)
		return res, s.conn.check(err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Exec(values(args))
}

func (s *guardedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		if s.conn.broken {
			return nil, driver.ErrBadConn
		}
		rows, err := q.QueryContext(ctx, args)
		if err != nil {
			return nil, s.conn.check(err)
		}
		return &guardedRows{Rows: rows, conn: s.conn}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Query(values(args))
}

func values(named []driver.NamedValue) []driver.Value {
	v := make([]driver.Value, len(named))
	for i, n := range named {
		v[i] = n.Value
	}
	return v
}

// guardedRows watches the errors of a result being read: a long error can arrive in
// the middle of the rows too.
type guardedRows struct {
	driver.Rows
	conn *guardedConn
}

func (r *guardedRows) Next(dest []driver.Value) error {
	if r.conn.broken {
		return driver.ErrBadConn
	}
	err := r.Rows.Next(dest)
	if err == io.EOF {
		return err // the end of the rows
	}
	return r.conn.check(err)
}

func (r *guardedRows) Close() error {
	if r.conn.broken {
		return nil
	}
	return r.conn.check(r.Rows.Close())
}

func (r *guardedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *guardedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *guardedRows) HasNextResultSet() bool {
	m, ok := r.Rows.(driver.RowsNextResultSet)
	return ok && !r.conn.broken && m.HasNextResultSet()
}

func (r *guardedRows) NextResultSet() error {
	m, ok := r.Rows.(driver.RowsNextResultSet)
	if !ok {
		return io.EOF
	}
	if r.conn.broken {
		return driver.ErrBadConn
	}
	err := m.NextResultSet()
	if err == io.EOF {
		return err
	}
	return r.conn.check(err)
}
