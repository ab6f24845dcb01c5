// Package store is the only place that speaks SQL. It returns domain structs and the
// sentinel errors ErrNotFound and ErrConflict; every multi-statement write runs in InTx.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Sentinel errors that handlers map to HTTP statuses.
var (
	ErrNotFound = errors.New("store: not found")
	// ErrLinkedElsewhere: an identity that may only be linked while alone already is
	// linked with others (LinkIdentities).
	ErrLinkedElsewhere = errors.New("store: the identity is linked with others already")
	ErrConflict        = errors.New("store: conflict")
	// ErrUnavailable marks every error of a call that could not reach the database: it
	// refused or dropped the connection, or is shutting down or starting up (a restart,
	// a failover). It is transient: handlers answer 503 with Retry-After. The pool's
	// driver guard (driver.go) classifies each driver error once, so it holds whatever
	// path the error took through the store.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrInvalidInput is a value PostgreSQL refuses as text (invalid UTF-8, a NUL byte)
	// or as too long for its column: the handlers validate input at the edge, and this
	// keeps anything that slips past from becoming a 500.
	ErrInvalidInput = errors.New("store: invalid input")
)

// Store wraps the connection pool. Its query methods are also available on Tx.
type Store struct {
	db *sqlx.DB
	q  sqlx.ExtContext
}

// Tx is a Store bound to one transaction.
type Tx = Store

// Open connects to PostgreSQL, checks the connection and sizes the pool.
func Open(ctx context.Context, dsn string) (*Store, error) {
	connector, err := openConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db := sqlx.NewDb(sql.OpenDB(connector), "postgres")
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: cannot reach the database: %w", err)
	}
	return &Store{db: db, q: db}, nil
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the pool for migrations and LISTEN connections.
func (s *Store) DB() *sqlx.DB { return s.db }

// Ping reports whether the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
// Calling InTx on a Tx runs fn in the same transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	if _, nested := s.q.(*sqlx.Tx); nested {
		return fn(s)
	}
	sqlTx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", mapErr(err))
	}
	if err := fn(&Store{db: s.db, q: sqlTx}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", mapErr(err))
	}
	return nil
}

// mapErr turns driver errors into the sentinels handlers understand.
func mapErr(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var pqErr *pq.Error
	if errors.As(err, &pqErr) {
		switch pqErr.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%w: %s", ErrConflict, pqErr.Constraint)
		case "22P02": // invalid_text_representation: an ID from a URL that is not a UUID names nothing
			return ErrNotFound
		case "22021", "22P05", "22001": // character_not_in_repertoire (invalid UTF-8, NUL), untranslatable_character, string_data_right_truncation
			return fmt.Errorf("%w: %s", ErrInvalidInput, pqErr.Code.Name())
		}
	}
	return err
}

// wrap names the failed operation and maps the error; nil stays nil.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	err = mapErr(err)
	if errors.Is(err, ErrNotFound) {
		return ErrNotFound
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

// execOne runs a statement that must touch exactly one row.
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return wrap(op, err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
