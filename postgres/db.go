package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/sentineldf/sentineldf"
)

// Compile-time guards.
var (
	_ sentineldf.Store    = (*DB)(nil)
	_ sentineldf.JobQueue = (*DB)(nil)
)

// AppRole is the role every store session runs as (see the package doc).
const AppRole = "sentineldf_app"

// Defaults for Options.
const (
	// DefaultJobTimeout bounds one run of a job; a job past it has its
	// context cancelled and is retried.
	DefaultJobTimeout = 10 * time.Minute
	// DefaultRescueStuckJobsAfter is how long a job may stay running before
	// River considers its worker dead and schedules it again.
	DefaultRescueStuckJobsAfter = 15 * time.Minute
	// DefaultFetchPollInterval is how often workers look for jobs when no
	// insert notification arrived (Postgres notifies workers of inserts, so
	// this is only the fallback).
	DefaultFetchPollInterval = time.Second
)

// Options configure Open.
type Options struct {
	// URL is the database's connection string
	// (postgres://user:password@host:5432/db?sslmode=verify-full).
	// Required. Its user must be Role, a member of Role, or a superuser.
	URL string
	// Logger receives the store's and River's logs (nil: discarded).
	Logger *slog.Logger
	// QueryObserver, when set, is called after every Store and JobQueue
	// method with the method's name ("Scan", "CompleteShard"…) and how long
	// it took; it feeds sentineldf_db_query_duration_seconds.
	QueryObserver func(op string, d time.Duration)
	// MaxConns is the size of the connection pool, shared by the store and
	// River (0: pgxpool's default, max(4, NumCPU), or the URL's
	// pool_max_conns).
	MaxConns int32
	// JobTimeout overrides DefaultJobTimeout for workers started with
	// StartWorkers; -1 means no timeout.
	JobTimeout time.Duration
	// RescueStuckJobsAfter overrides DefaultRescueStuckJobsAfter (or
	// JobTimeout + 5 minutes when that is longer); it must exceed
	// JobTimeout.
	RescueStuckJobsAfter time.Duration
	// FetchPollInterval overrides DefaultFetchPollInterval.
	FetchPollInterval time.Duration
	// SkipMigrate makes Open use the schema as it is. By default Open runs
	// Migrate with URL first, which needs an owner's URL; api and worker
	// processes connect as the application role, set SkipMigrate and leave
	// migrations to `sentineldf migrate`.
	SkipMigrate bool
	// Role is the role sessions run as, by SET ROLE at connect (""
	// means AppRole). Open fails when it is a superuser or has BYPASSRLS.
	Role string

	// riverTestOnly makes River skip its start-up jitter (tests only).
	riverTestOnly bool
}

// DB is the Postgres Store and JobQueue. It is safe for concurrent use.
type DB struct {
	pool     *pgxpool.Pool
	river    *river.Client[pgx.Tx] // inserts and admin only; StartWorkers makes the working client
	logger   *slog.Logger
	observer func(op string, d time.Duration)
	opts     Options
	// partitions holds the months (monthKey) whose usage partition is
	// known to exist.
	partitions sync.Map
}

// Open connects to the database at opts.URL, applies the migrations unless
// opts.SkipMigrate, checks that its sessions are subject to row-level
// security, creates the usage partitions of this month and the next two,
// and returns the store. Close releases it.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.URL == "" {
		return nil, errors.New("postgres: open: empty URL")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Role == "" {
		opts.Role = AppRole
	}
	if !opts.SkipMigrate {
		if err := migrate(ctx, opts.URL, opts.Logger); err != nil {
			return nil, err
		}
	}
	cfg, err := pgxpool.ParseConfig(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sentineldf"
	}
	setRole := "SET ROLE " + pgx.Identifier{opts.Role}.Sanitize()
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		if _, err := c.Exec(ctx, setRole); err != nil {
			return fmt.Errorf("set role %s: %w", opts.Role, err)
		}
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db := &DB{pool: pool, logger: opts.Logger, observer: opts.QueryObserver, opts: opts}
	if err := db.checkSession(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	t := now()
	for i := range 3 {
		if err := db.ensurePartition(ctx, time.Date(t.Year(), t.Month()+time.Month(i), 1, 0, 0, 0, 0, time.UTC)); err != nil {
			pool.Close()
			return nil, err
		}
	}
	db.river, err = river.NewClient(riverpgxv5.New(pool), &river.Config{
		Logger:      opts.Logger,
		MaxAttempts: sentineldf.MaxJobAttempts,
		TestOnly:    opts.riverTestOnly,
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: river insert client: %w", err)
	}
	return db, nil
}

// checkSession verifies that the pool's sessions run as a role that
// row-level security applies to, over a migrated schema.
func (db *DB) checkSession(ctx context.Context) error {
	var (
		role             string
		bypass, migrated bool
	)
	err := db.pool.QueryRow(ctx, `SELECT current_user::TEXT, r.rolsuper OR r.rolbypassrls, to_regclass('usage_keys') IS NOT NULL
		FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&role, &bypass, &migrated)
	if err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	if bypass {
		return fmt.Errorf("postgres: open: sessions run as %q, a superuser or BYPASSRLS role that row-level security does not apply to; use %q", role, AppRole)
	}
	if !migrated {
		return errors.New("postgres: open: the schema is not migrated (run `sentineldf migrate`)")
	}
	return nil
}

// Close closes the pool. Stop any client from StartWorkers first.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// StartWorkers starts a River client that runs workers' jobs from the
// default queue, at most maxWorkers at once (0: GOMAXPROCS), retrying failed
// jobs with River's default backoff (attempt⁴ seconds, with jitter) until
// sentineldf.MaxJobAttempts, then discarding them to the dead-job list. The
// caller stops the client with Stop or StopAndCancel before Close;
// cancelling ctx starts a soft stop.
//
// River's periodic REINDEX of its indexes needs their ownership, which the
// application role has not, so it is turned off: an operator reindexes
// river_job's indexes with the owner's role should they bloat.
func (db *DB) StartWorkers(ctx context.Context, workers *river.Workers, maxWorkers int) (*river.Client[pgx.Tx], error) {
	if maxWorkers <= 0 {
		maxWorkers = runtime.GOMAXPROCS(0)
	}
	jobTimeout := db.opts.JobTimeout
	if jobTimeout == 0 {
		jobTimeout = DefaultJobTimeout
	}
	rescue := db.opts.RescueStuckJobsAfter
	if rescue <= 0 {
		rescue = max(DefaultRescueStuckJobsAfter, jobTimeout+5*time.Minute)
	}
	poll := db.opts.FetchPollInterval
	if poll <= 0 {
		poll = DefaultFetchPollInterval
	}
	client, err := river.NewClient(riverpgxv5.New(db.pool), &river.Config{
		Logger:               db.logger,
		MaxAttempts:          sentineldf.MaxJobAttempts,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers:              workers,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: rescue,
		FetchPollInterval:    poll,
		FetchCooldown:        min(river.FetchCooldownDefault, poll),
		ReindexerIndexNames:  []string{},
		TestOnly:             db.opts.riverTestOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: river client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("postgres: start river client: %w", err)
	}
	return client, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	defer db.observe("Ping")()
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// observe starts timing op; the returned func reports it.
func (db *DB) observe(op string) func() {
	if db.observer == nil {
		return func() {}
	}
	start := time.Now()
	return func() { db.observer(op, time.Since(start)) }
}

// Scoping statements: each sets a transaction-local setting that the
// row-level security policies read (see the package doc).
const (
	qScopeOrg      = `SELECT set_config('app.org_id', $1, true)`
	qScopeKey      = `SELECT set_config('app.key_id', $1, true)`
	qScopeOperator = `SELECT set_config('app.operator_lookup', 'on', true)`
)

// orgTx runs fn in a transaction scoped to orgID and commits it when fn
// succeeds.
func (db *DB) orgTx(ctx context.Context, op, orgID string, fn func(tx pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, qScopeOrg, orgID); err != nil {
		return fmt.Errorf("postgres: %s: scope: %w", op, err)
	}
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", op, err)
	}
	return nil
}

// batch is a pgx.Batch built by chaining queue calls.
type batch struct{ pgx.Batch }

// scopedBatch returns a batch whose first statement scopes it: scope is one
// of the qScope queries and args its arguments.
func scopedBatch(scope string, args ...any) *batch {
	b := &batch{}
	b.Queue(scope, args...)
	return b
}

// queue adds a statement to b.
func (b *batch) queue(sql string, args ...any) *batch {
	b.Queue(sql, args...)
	return b
}

// sendBatch sends b, a scopedBatch, in one round trip. pgx sends a batch
// as one pipeline closed by a single Sync, which Postgres runs as one
// implicit transaction: the scope's local setting holds for every
// statement after it, and an error rolls all of them back. read consumes
// the results of the statements after the scope, in order.
func (db *DB) sendBatch(ctx context.Context, op string, b *batch, read func(br pgx.BatchResults) error) error {
	br := db.pool.SendBatch(ctx, &b.Batch)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return fmt.Errorf("postgres: %s: scope: %w", op, err)
	}
	if err := read(br); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return nil
}

// insertJob enqueues args in tx at priority with the standard attempts.
func (db *DB) insertJob(ctx context.Context, tx pgx.Tx, args river.JobArgs, priority int) error {
	if _, err := db.river.InsertTx(ctx, tx, args, &river.InsertOpts{
		MaxAttempts: sentineldf.MaxJobAttempts,
		Priority:    jobPriority(priority),
	}); err != nil {
		return fmt.Errorf("enqueue %s: %w", args.Kind(), err)
	}
	return nil
}

// jobPriority maps a scan's priority to River's 1 (first) … 4 (last).
func jobPriority(p int) int {
	return min(max(p, 1), 4)
}

// Driver error classification.

// SQLSTATEs the store distinguishes.
const (
	sqlstateUniqueViolation     = "23505"
	sqlstateForeignKeyViolation = "23503"
	sqlstateCheckViolation      = "23514" // also: no partition for the row
)

func pgError(err error) *pgconn.PgError {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe
	}
	return nil
}

func isUniqueViolation(err error) bool {
	pe := pgError(err)
	return pe != nil && pe.Code == sqlstateUniqueViolation
}

// isConstraintViolation reports a unique violation of the named index.
func isConstraintViolation(err error, constraint string) bool {
	pe := pgError(err)
	return pe != nil && pe.Code == sqlstateUniqueViolation && pe.ConstraintName == constraint
}

func isForeignKeyViolation(err error) bool {
	pe := pgError(err)
	return pe != nil && pe.Code == sqlstateForeignKeyViolation
}

// Value encodings (see package migrations).

// micros encodes t as microseconds since the epoch.
func micros(t time.Time) int64 { return t.UnixMicro() }

// ceilMicros is micros rounded up: the first stored instant not before t.
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if time.UnixMicro(us).Before(t) {
		us++
	}
	return us
}

// fromMicros decodes micros as a UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros encodes an optional time.
func nullMicros(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	us := micros(*t)
	return &us
}

// fromNullMicros decodes an optional time.
func fromNullMicros(us *int64) *time.Time {
	if us == nil {
		return nil
	}
	t := fromMicros(*us)
	return &t
}

// now is the current time at the stored precision.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// norm brings t to the stored precision, or now when t is zero.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

func encodeBytes(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeBytes(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode stored bytes: %w", err)
	}
	return b, nil
}

// encodeMap stores a string map as a JSON object, "" when empty.
func encodeMap(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode map: %w", err)
	}
	return string(b), nil
}

func decodeMap(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode map: %w", err)
	}
	return m, nil
}
