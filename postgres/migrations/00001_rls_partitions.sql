-- Postgres-only schema, applied after the shared set (../../migrations) with
-- its own goose version table (goose_db_version_postgres). See the postgres
-- package doc for the design: the application role, row-level security on
-- every tenant table, and usage partitioned by month.

-- +goose Up

-- The role every store session runs as (SET ROLE at connect). It owns
-- nothing, cannot log in by itself and bypasses nothing: row-level security
-- applies to it. It is created once per cluster; an operator whose migrating
-- role lacks CREATEROLE creates it beforehand with the same attributes.
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'sentineldf_app') THEN
        CREATE ROLE sentineldf_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database of the cluster created it at the same moment
END
$$;
-- +goose StatementEnd

-- Ids that are ordered (listing ties, cursors) compare bytewise, as in
-- SQLite, whatever the database's default collation.
ALTER TABLE scans ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE api_keys ALTER COLUMN id TYPE TEXT COLLATE "C";
ALTER TABLE mbom_records ALTER COLUMN id TYPE TEXT COLLATE "C";

-- Usage, partitioned by month. A partitioned table's unique keys must hold
-- the partition column, so the idempotency of usage keys moves to a ledger
-- of its own: a key is recorded once whatever month its retry falls in.
CREATE TABLE usage_keys (
    org_id      TEXT   NOT NULL REFERENCES orgs (id),
    usage_key   TEXT   NOT NULL,
    recorded_at BIGINT NOT NULL, -- of the usage row, to prune keys with their partition
    PRIMARY KEY (org_id, usage_key)
);

INSERT INTO usage_keys (org_id, usage_key, recorded_at)
SELECT org_id, usage_key, recorded_at FROM usage_records;

ALTER TABLE usage_records RENAME TO usage_records_unpartitioned;

-- recorded_at is microseconds since the epoch (UTC); partitions cover
-- calendar months. The primary key serves the period sums as an index-only
-- scan (org, time range) and carries what they read.
CREATE TABLE usage_records (
    org_id      TEXT   NOT NULL,
    usage_key   TEXT   NOT NULL,
    docs        BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    day         TEXT   NOT NULL, -- YYYY-MM-DD of recorded_at, UTC
    CONSTRAINT usage_records_part_pkey PRIMARY KEY (org_id, recorded_at, usage_key) INCLUDE (day, docs, bytes)
) PARTITION BY RANGE (recorded_at);

-- sentineldf_ensure_usage_partition creates the partition of the month
-- that contains day, unless it exists, and returns its name. It runs as its
-- owner (the migrating role): the application role may call it but owns
-- no table and cannot create one. Concurrent callers serialise on an
-- advisory lock; the common case (the partition exists) takes no lock.
-- +goose StatementBegin
CREATE FUNCTION sentineldf_ensure_usage_partition(day DATE) RETURNS TEXT
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    month_start DATE := date_trunc('month', day)::DATE;
    month_end   DATE := (date_trunc('month', day) + INTERVAL '1 month')::DATE;
    part        TEXT := 'usage_records_p' || to_char(month_start, 'YYYYMM');
    lo          BIGINT := (extract(epoch FROM month_start::TIMESTAMP AT TIME ZONE 'UTC') * 1000000)::BIGINT;
    hi          BIGINT := (extract(epoch FROM month_end::TIMESTAMP AT TIME ZONE 'UTC') * 1000000)::BIGINT;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN part;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('sentineldf_ensure_usage_partition'));
    IF to_regclass(quote_ident(part)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF usage_records FOR VALUES FROM (%s) TO (%s)', part, lo, hi);
    END IF;
    RETURN part;
END
$$;
-- +goose StatementEnd

-- A SECURITY DEFINER function must not resolve names through a schema its
-- caller can write: pin its search path to this schema, temporary tables
-- last.
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('ALTER FUNCTION sentineldf_ensure_usage_partition(DATE) SET search_path = %I, pg_temp', current_schema());
END
$$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION sentineldf_ensure_usage_partition(DATE) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION sentineldf_ensure_usage_partition(DATE) TO sentineldf_app;

-- Move the rows recorded so far, if any, into their partitions.
SELECT sentineldf_ensure_usage_partition(m)
FROM (SELECT DISTINCT (to_timestamp(recorded_at / 1000000.0) AT TIME ZONE 'UTC')::DATE AS m
      FROM usage_records_unpartitioned) AS months;

INSERT INTO usage_records (org_id, usage_key, docs, bytes, recorded_at, day)
SELECT org_id, usage_key, docs, bytes, recorded_at, day FROM usage_records_unpartitioned;

DROP TABLE usage_records_unpartitioned;

-- Row-level security: a session sees and writes only the rows of the org
-- named by the transaction-local setting app.org_id, so a query that forgot
-- its org filter still cannot reach another tenant. FORCE subjects the
-- tables' owner too; superusers and BYPASSRLS roles are never subject, which
-- is why the store refuses to run as one. Unset, the setting is NULL or '',
-- which matches no org.
ALTER TABLE orgs ENABLE ROW LEVEL SECURITY;
ALTER TABLE orgs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON orgs
    USING (id = current_setting('app.org_id', true))
    WITH CHECK (id = current_setting('app.org_id', true));
-- OperatorOrg and CreateOrg's check find the operator org by a flag, before
-- they know its id: app.operator_lookup = 'on' shows that one row, read-only.
CREATE POLICY operator_lookup ON orgs FOR SELECT
    USING (is_operator AND current_setting('app.operator_lookup', true) = 'on');

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant ON api_keys
    USING (org_id = current_setting('app.org_id', true))
    WITH CHECK (org_id = current_setting('app.org_id', true));
-- Authentication looks a key up by its public id before it knows the org:
-- app.key_id shows exactly that one key, read-only.
CREATE POLICY key_lookup ON api_keys FOR SELECT
    USING (id = current_setting('app.key_id', true));

-- Every other tenant table: the org's rows only.
-- +goose StatementBegin
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'scans', 'scan_files', 'scan_shards', 'usage_keys', 'usage_records',
                             'signing_keys', 'mbom_records', 'audit_log'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant ON %I USING (org_id = current_setting(''app.org_id'', true)) '
                       'WITH CHECK (org_id = current_setting(''app.org_id'', true))', t);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The application role's privileges: what the store does, nothing more (no
-- DELETE; of orgs only the audit sequence is ever updated). Partitions are
-- reached through their parent only.
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO sentineldf_app', current_schema());
END
$$;
-- +goose StatementEnd
GRANT SELECT, INSERT ON orgs TO sentineldf_app;
GRANT UPDATE (audit_seq) ON orgs TO sentineldf_app;
GRANT SELECT, INSERT, UPDATE ON users, api_keys, scans, scan_files, scan_shards, usage_keys, usage_records,
    signing_keys, mbom_records, audit_log TO sentineldf_app;

-- +goose Down

REVOKE ALL ON orgs, users, api_keys, scans, scan_files, scan_shards, usage_keys, usage_records,
    signing_keys, mbom_records, audit_log FROM sentineldf_app;
-- +goose StatementBegin
DO $$
BEGIN
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM sentineldf_app', current_schema());
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['orgs', 'api_keys', 'users', 'scans', 'scan_files', 'scan_shards', 'usage_records',
                             'signing_keys', 'mbom_records', 'audit_log'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS tenant ON %I', t);
        EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
-- +goose StatementEnd
DROP POLICY operator_lookup ON orgs;
DROP POLICY key_lookup ON api_keys;

ALTER TABLE usage_records RENAME TO usage_records_partitioned;

CREATE TABLE usage_records (
    org_id      TEXT   NOT NULL REFERENCES orgs (id),
    usage_key   TEXT   NOT NULL,
    docs        BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    day         TEXT   NOT NULL,
    PRIMARY KEY (org_id, usage_key)
);
CREATE INDEX usage_records_org_time ON usage_records (org_id, recorded_at, day, docs, bytes);

INSERT INTO usage_records (org_id, usage_key, docs, bytes, recorded_at, day)
SELECT org_id, usage_key, docs, bytes, recorded_at, day FROM usage_records_partitioned;

DROP TABLE usage_records_partitioned; -- and its partitions
DROP TABLE usage_keys;
DROP FUNCTION sentineldf_ensure_usage_partition(DATE);

ALTER TABLE mbom_records ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE api_keys ALTER COLUMN id TYPE TEXT COLLATE "default";
ALTER TABLE scans ALTER COLUMN id TYPE TEXT COLLATE "default";

-- The role is the cluster's, possibly used by other databases: it stays.
