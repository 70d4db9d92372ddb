// Package postgres is the distributed sentineldf.Store and
// sentineldf.JobQueue: PostgreSQL through a jackc/pgx/v5 pool, with River's
// job tables (riverpgxv5) in the same database, so that a state change and
// the job it needs commit together (River's InsertTx and InsertManyTx inside
// the store's own pgx.Tx). It passes the same conformance suite
// (storetest) as the sqlite package and runs the same shared goose
// migrations (package migrations, dialect postgres).
//
// # Migrations and roles
//
// Migrate applies, under a per-database advisory lock, the shared schema,
// then River's migrations, then this package's Postgres-only set
// (postgres/migrations, goose version table goose_db_version_postgres),
// then grants the application role what River's tables need. It must run
// as a role that may create tables (the database owner, or the RDS master
// user) and, the first time on a cluster, create roles: the Postgres-only
// set creates AppRole ("sentineldf_app") when it does not exist, NOLOGIN,
// NOSUPERUSER, NOBYPASSRLS, owning nothing. Where the migrating role lacks
// CREATEROLE, create AppRole beforehand with those attributes.
//
// Every store session runs as AppRole: Open's pool issues SET ROLE at
// connect, so the URL's user must be AppRole itself or a member of it (or,
// in tests and single-box setups, a superuser). Open refuses to start when
// the role it ends up as is a superuser or has BYPASSRLS, because
// row-level security would not apply. In production:
//
//	-- once, as an administrator
//	CREATE ROLE sentineldf_api LOGIN PASSWORD '…' IN ROLE sentineldf_app;
//	-- api and worker processes:   DATABASE_URL=postgres://sentineldf_api@…
//	-- `sentineldf migrate` (once per release) with the owner's URL
//
// Open migrates by default, which needs the owner's URL (convenient for
// tests and a single process); api and worker processes set
// Options.SkipMigrate and connect with the application login.
//
// # Row-level security
//
// Queries filter by org themselves; row-level security is the second line
// of defence, for the query that forgot its filter. Every tenant table
// (orgs, users, api_keys, scans, scan_files, scan_shards, usage_keys,
// usage_records, signing_keys, mbom_records, audit_log) has ENABLE and FORCE
// ROW LEVEL SECURITY and a policy tenant that admits, for reading and
// writing, only rows whose org_id (orgs: id) equals the transaction-local
// setting app.org_id. Every org-scoped method runs in one transaction that
// first executes SELECT set_config('app.org_id', $1, true); the setting is
// local, so it never outlives the transaction on a pooled connection.
// Without it a session sees no tenant rows at all.
//
// Three operations must cross orgs, and each gets the narrowest window
// that serves it, again by a transaction-local setting and a read-only
// policy, rather than a general bypass:
//
//   - LookupAPIKey authenticates a key before its org is known: it sets
//     app.key_id, and policy key_lookup shows exactly that one api_keys row.
//   - OperatorOrg (and nothing else) sets app.operator_lookup = 'on', and
//     policy operator_lookup shows the one orgs row marked is_operator.
//   - CreateOrg scopes its transaction to the new org's id; the unique
//     index that allows one operator org is enforced whatever the policies
//     show, so two first starts race safely.
//
// Foreign-key checks run as the table owner without row security, so a
// reference to another org's scan still fails as a missing one. River's
// tables carry no tenant data and no policy: the JobQueue admin listing and
// River itself use them directly. Row-level security stops mistakes, not a
// hostile SQL injection, which could set app.org_id itself; queries take
// every value as a bind parameter.
//
// # Usage partitions
//
// usage_records is partitioned by RANGE on recorded_at (microseconds),
// one partition per calendar month (usage_records_pYYYYMM), created by the
// SECURITY DEFINER function sentineldf_ensure_usage_partition, which the
// application role may call but which runs as the owner: the application
// role creates no tables. The store ensures the current and next two
// months' partitions at Open and any other month before it first records
// into it (remembered per process; a partition dropped behind its back is
// recreated on the next insert's retry). A partitioned table's unique keys
// must contain the partition column, so exactly-once lives in the
// unpartitioned ledger usage_keys (org_id, usage_key): a usage row is
// inserted only when its key was new, in the same statement, so a shard
// retried on another day, or in another month, still counts once.
//
// # Indexes
//
// Every query finds an index that starts with org_id: the status read and
// state changes use scans' primary key, files and shards theirs, listing
// scans_org_created with a (created_at, id) row comparison as its bound,
// key lookup api_keys' primary key, period sums the partitions' primary key
// (org_id, recorded_at, usage_key) INCLUDE (day, docs, bytes) as an
// index-only scan of the period's partitions. Ids that are ordered are
// collated "C", so listing order matches SQLite's byte order. The tests run
// EXPLAIN on these hot queries.
//
// # Tests
//
// The tests use the server at TEST_DATABASE_URL (a postgres:// URL of a
// role that may create databases and roles, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable) and skip
// without it, unless SENTINELDF_REQUIRE_SERVICES=1, when they fail. They
// migrate one template database per run and give each test a copy of its
// own (CREATE DATABASE … TEMPLATE), dropped afterwards.
package postgres
