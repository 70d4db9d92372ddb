package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps prepared statements for a pool. Parsing dominates the
// cost of SQLite's short queries, and database/sql prepares a *sql.Stmt
// at most once per connection, so the hot queries are prepared once at
// Open (prepare) and reused.
//
// A statement is never prepared lazily inside a transaction: preparing on
// the pool needs a second connection, which the one-connection write pool
// (or a read pool whose every connection is in a transaction) never frees.
// Queries outside the cache simply run unprepared.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// prepare prepares queries on the pool. No transaction may be open.
func (c *stmtCache) prepare(ctx context.Context, queries ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range queries {
		if _, ok := c.m[q]; ok {
			continue
		}
		s, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		c.m[q] = s
	}
	return nil
}

// get returns the prepared statement of query, or nil.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.m[query]
}

// QueryRowContext runs query on the pool, prepared when it is in the cache.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := c.get(query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// QueryContext runs query on the pool, prepared when it is in the cache.
func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := c.get(query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

// close closes every statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.m {
		errs = append(errs, s.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// txn is a transaction whose queries use its pool's prepared statements.
// The embedded *sql.Tx is what River's InsertTx takes.
type txn struct {
	*sql.Tx
	stmts *stmtCache
}

// QueryRowContext runs query in the transaction.
func (t txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmts.get(query); s != nil {
		return t.Tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

// QueryContext runs query in the transaction.
func (t txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmts.get(query); s != nil {
		return t.Tx.StmtContext(ctx, s).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

// ExecContext runs query in the transaction.
func (t txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmts.get(query); s != nil {
		return t.Tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}
