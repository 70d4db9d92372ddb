// Package sqlite is the embedded sentineldf.Store and sentineldf.JobQueue:
// one SQLite file (modernc.org/sqlite, pure Go) holding the system of record
// and River's job tables, so `sentineldf serve` needs no server.
//
// SQLite allows one writer at a time. The DB therefore keeps two pools over
// the same file in WAL mode: a write pool of exactly one connection, whose
// transactions begin IMMEDIATE, used by every Store write and by River; and
// a read pool of several query-only connections for the Store's reads. WAL
// lets readers run while the writer commits, so many API requests polling a
// scan's status never wait on workers recording shards, and writers queue on
// the pool instead of spinning in SQLite's busy handler. The busy timeout
// only matters when another process (an admin command) writes the same
// file.
//
// Store methods that change a scan's state insert the job the new state
// needs with River's InsertTx in the same transaction.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/migrations"
)

// Compile-time guards.
var (
	_ sentineldf.Store    = (*DB)(nil)
	_ sentineldf.JobQueue = (*DB)(nil)
)

// Defaults for Options.
const (
	// DefaultBusyTimeout is how long a connection waits for a lock another
	// process holds before failing with SQLITE_BUSY.
	DefaultBusyTimeout = 5 * time.Second
	// DefaultJobTimeout bounds one run of a job; a job past it has its
	// context cancelled and is retried.
	DefaultJobTimeout = 10 * time.Minute
	// DefaultRescueStuckJobsAfter is how long a job may stay running before
	// River considers its worker dead and schedules it again.
	DefaultRescueStuckJobsAfter = 15 * time.Minute
	// DefaultFetchPollInterval is how often workers look for jobs when no
	// insert notification arrived.
	DefaultFetchPollInterval = time.Second
)

// Options configure Open.
type Options struct {
	// Path is the database file, created (mode 0600) when missing; its
	// directory must exist. Required.
	Path string
	// Logger receives the store's and River's logs (nil: discarded).
	Logger *slog.Logger
	// QueryObserver, when set, is called after every Store and JobQueue
	// method with the method's name ("Scan", "CompleteShard"…) and how long
	// it took; it feeds sentineldf_db_query_duration_seconds.
	QueryObserver func(op string, d time.Duration)
	// ReadConns is the size of the read pool (0: max(4, GOMAXPROCS)).
	ReadConns int
	// BusyTimeout overrides DefaultBusyTimeout.
	BusyTimeout time.Duration
	// JobTimeout overrides DefaultJobTimeout for workers started with
	// StartWorkers; -1 means no timeout.
	JobTimeout time.Duration
	// RescueStuckJobsAfter overrides DefaultRescueStuckJobsAfter (or
	// JobTimeout + 5 minutes when that is longer); it must exceed
	// JobTimeout.
	RescueStuckJobsAfter time.Duration
	// FetchPollInterval overrides DefaultFetchPollInterval.
	FetchPollInterval time.Duration

	// riverTestOnly makes River skip its start-up jitter (tests only).
	riverTestOnly bool
}

// DB is the SQLite Store and JobQueue. It is safe for concurrent use.
type DB struct {
	write      *sql.DB // one connection: every write, and River
	read       *sql.DB // query-only connections for the Store's reads
	writeStmts *stmtCache
	readStmts  *stmtCache
	river      *river.Client[*sql.Tx]
	logger     *slog.Logger
	observer   func(op string, d time.Duration)
	opts       Options
}

// Open opens (creating when missing) the database at opts.Path, applies the
// schema migrations and River's, and returns the store. Close releases it.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if opts.Path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	if opts.ReadConns <= 0 {
		opts.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	// The file holds key hashes and encrypted signing keys: owner-only. SQLite
	// gives its -wal and -shm files the database file's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	busy := fmt.Sprint(opts.BusyTimeout.Milliseconds())

	write, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma": {"busy_timeout(" + busy + ")", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)",
			// Truncate the WAL back to 64 MiB after a checkpoint, so that a
			// burst of writes under constant reads does not keep it large.
			"journal_size_limit(67108864)"},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	// Create the file and switch it to WAL before any reader opens it.
	if err := write.PingContext(ctx); err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}

	read, err := sql.Open("sqlite", dsn(abs, url.Values{
		"_pragma":     {"busy_timeout(" + busy + ")", "foreign_keys(1)"},
		"_query_only": {"1"},
	}))
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", opts.Path, err)
	}
	read.SetMaxOpenConns(opts.ReadConns)
	read.SetMaxIdleConns(opts.ReadConns)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)

	db := &DB{
		write: write, read: read, writeStmts: newStmtCache(write), readStmts: newStmtCache(read),
		logger: opts.Logger, observer: opts.QueryObserver, opts: opts,
	}
	if err := db.migrate(ctx); err != nil {
		db.closePools()
		return nil, err
	}
	if err := db.writeStmts.prepare(ctx, hotWriteQueries()...); err != nil {
		db.closePools()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	if err := db.readStmts.prepare(ctx, hotReadQueries()...); err != nil {
		db.closePools()
		return nil, fmt.Errorf("sqlite: prepare: %w", err)
	}
	db.river, err = river.NewClient(riversqlite.New(write), &river.Config{
		Logger:      opts.Logger,
		MaxAttempts: sentineldf.MaxJobAttempts,
		TestOnly:    opts.riverTestOnly,
	})
	if err != nil {
		db.closePools()
		return nil, fmt.Errorf("sqlite: river insert client: %w", err)
	}
	return db, nil
}

// dsn builds a modernc.org/sqlite data source name for the absolute path:
// a file: URI, so that any character in the path is escaped rather than
// parsed as a parameter.
func dsn(abs string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path // Windows drive letters
	}
	return u.String() + "?" + params.Encode()
}

// migrate applies the schema migrations, then River's.
func (db *DB) migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db.write, migrations.FS,
		goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, r := range res {
		db.logger.InfoContext(ctx, "applied migration", "source", filepath.Base(r.Source.Path), "duration", r.Duration)
	}
	m, err := rivermigrate.New(riversqlite.New(db.write), &rivermigrate.Config{Logger: db.logger})
	if err != nil {
		return fmt.Errorf("sqlite: river migrations: %w", err)
	}
	rres, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("sqlite: river migrate: %w", err)
	}
	for _, v := range rres.Versions {
		db.logger.InfoContext(ctx, "applied river migration", "version", v.Version, "name", v.Name)
	}
	return nil
}

// Close closes the database. Stop any client from StartWorkers first.
func (db *DB) Close() error {
	return db.closePools()
}

func (db *DB) closePools() error {
	return errors.Join(db.readStmts.close(), db.writeStmts.close(), db.read.Close(), db.write.Close())
}

// hotReadQueries are prepared on the read pool at Open: the status read
// and authentication.
func hotReadQueries() []string {
	return []string{qLoadScan, filesQuery(1), qScanExists, qShards, qLookupKey, qOrg, qListMBOMs, "SELECT 1"}
}

// hotWriteQueries are prepared on the write connection at Open: shard
// completion, scan state changes and key touches.
func hotWriteQueries() []string {
	return []string{qLoadScan, filesQuery(1), qCompleteShard, qShardExists, qInsertUsage, qAdvanceScan, qKeyLastUsed, qTouchKey}
}

// StartWorkers starts a River client that runs workers' jobs from the
// default queue, at most maxWorkers at once (0: GOMAXPROCS), retrying failed
// jobs with River's default backoff (attempt⁴ seconds, with jitter) until
// sentineldf.MaxJobAttempts, then discarding them to the dead-job list. The
// caller stops the client with Stop or StopAndCancel before Close;
// cancelling ctx starts a soft stop.
func (db *DB) StartWorkers(ctx context.Context, workers *river.Workers, maxWorkers int) (*river.Client[*sql.Tx], error) {
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
	client, err := river.NewClient(riversqlite.New(db.write), &river.Config{
		Logger:               db.logger,
		MaxAttempts:          sentineldf.MaxJobAttempts,
		Queues:               map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: maxWorkers}},
		Workers:              workers,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: rescue,
		FetchPollInterval:    poll,
		FetchCooldown:        min(river.FetchCooldownDefault, poll),
		TestOnly:             db.opts.riverTestOnly,
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: river client: %w", err)
	}
	if err := client.Start(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: start river client: %w", err)
	}
	return client, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	defer db.observe("Ping")()
	var one int
	if err := db.readStmts.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
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

// writeTx runs fn in an IMMEDIATE transaction on the write connection and
// commits it when fn succeeds.
func (db *DB) writeTx(ctx context.Context, op string, fn func(tx txn) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", op, err)
	}
	if err := fn(txn{tx, db.writeStmts}); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			db.logger.WarnContext(ctx, "rollback failed", "op", op, "err", rerr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", op, err)
	}
	return nil
}

// readTx runs fn in a read-only transaction on the read pool, so that its
// queries see one snapshot.
func (db *DB) readTx(ctx context.Context, op string, fn func(tx txn) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", op, err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to undo
	return fn(txn{tx, db.readStmts})
}

// insertJob enqueues args in tx at priority with the standard attempts.
func (db *DB) insertJob(ctx context.Context, tx txn, args river.JobArgs, priority int) error {
	if _, err := db.river.InsertTx(ctx, tx.Tx, args, &river.InsertOpts{
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

// Driver error classification (extended result codes are on).

func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUniqueViolation(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func isForeignKeyViolation(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
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
func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(*t), Valid: true}
}

// fromNullMicros decodes an optional time.
func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
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
