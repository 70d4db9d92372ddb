-- SentinelDF initial schema. Portable SQL only: see doc.go.

-- +goose Up

CREATE TABLE orgs (
    id          TEXT    NOT NULL PRIMARY KEY,
    name        TEXT    NOT NULL,
    plan        TEXT    NOT NULL,
    is_operator BOOLEAN NOT NULL DEFAULT FALSE,
    -- audit_seq is the last audit_log.id allocated for the org.
    audit_seq   BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL
);

-- At most one operator org.
CREATE UNIQUE INDEX orgs_single_operator ON orgs (is_operator) WHERE is_operator;

CREATE TABLE users (
    org_id     TEXT   NOT NULL REFERENCES orgs (id),
    id         TEXT   NOT NULL,
    email      TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);

CREATE UNIQUE INDEX users_org_email ON users (org_id, email);

-- api_keys is keyed by the public key id alone: authentication looks a key
-- up before it knows the org.
CREATE TABLE api_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    org_id       TEXT   NOT NULL REFERENCES orgs (id),
    name         TEXT   NOT NULL,
    scopes       TEXT   NOT NULL, -- JSON array of strings
    key_hash     TEXT   NOT NULL, -- base64 of the bcrypt hash
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);

CREATE INDEX api_keys_org_created ON api_keys (org_id, created_at);

CREATE TABLE scans (
    org_id           TEXT   NOT NULL REFERENCES orgs (id),
    id               TEXT   NOT NULL,
    state            TEXT   NOT NULL,
    priority         BIGINT NOT NULL DEFAULT 0,
    callback_url     TEXT   NOT NULL DEFAULT '',
    docs_done        BIGINT NOT NULL DEFAULT 0,
    docs_total       BIGINT NOT NULL DEFAULT 0,
    bytes_done       BIGINT NOT NULL DEFAULT 0,
    bytes_total      BIGINT NOT NULL DEFAULT 0,
    count_clean      BIGINT NOT NULL DEFAULT 0,
    count_elevated   BIGINT NOT NULL DEFAULT 0,
    count_quarantine BIGINT NOT NULL DEFAULT 0,
    cache_hits       BIGINT NOT NULL DEFAULT 0,
    malformed        BIGINT NOT NULL DEFAULT 0,
    shards_total     BIGINT NOT NULL DEFAULT 0,
    shards_done      BIGINT NOT NULL DEFAULT 0,
    error_message    TEXT   NOT NULL DEFAULT '',
    created_by       TEXT   NOT NULL DEFAULT '',
    trace            TEXT   NOT NULL DEFAULT '', -- JSON object, '' when none
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    PRIMARY KEY (org_id, id)
);

-- Listing, newest first, with a (created_at, id) cursor.
CREATE INDEX scans_org_created ON scans (org_id, created_at, id);

CREATE TABLE scan_files (
    org_id     TEXT    NOT NULL,
    scan_id    TEXT    NOT NULL,
    file_index BIGINT  NOT NULL,
    name       TEXT    NOT NULL,
    size_bytes BIGINT  NOT NULL,
    sha256     TEXT    NOT NULL DEFAULT '',
    uploaded   BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (org_id, scan_id, file_index),
    FOREIGN KEY (org_id, scan_id) REFERENCES scans (org_id, id) ON DELETE CASCADE
);

CREATE TABLE scan_shards (
    org_id           TEXT    NOT NULL,
    scan_id          TEXT    NOT NULL,
    shard_index      BIGINT  NOT NULL,
    file_index       BIGINT  NOT NULL,
    byte_offset      BIGINT  NOT NULL,
    byte_length      BIGINT  NOT NULL,
    first_line       BIGINT  NOT NULL,
    done             BOOLEAN NOT NULL DEFAULT FALSE,
    docs             BIGINT  NOT NULL DEFAULT 0,
    bytes            BIGINT  NOT NULL DEFAULT 0,
    count_clean      BIGINT  NOT NULL DEFAULT 0,
    count_elevated   BIGINT  NOT NULL DEFAULT 0,
    count_quarantine BIGINT  NOT NULL DEFAULT 0,
    cache_hits       BIGINT  NOT NULL DEFAULT 0,
    malformed        BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, scan_id, shard_index),
    FOREIGN KEY (org_id, scan_id) REFERENCES scans (org_id, id) ON DELETE CASCADE
);

-- One row per idempotency key: recording a key twice counts once.
CREATE TABLE usage_records (
    org_id      TEXT   NOT NULL REFERENCES orgs (id),
    usage_key   TEXT   NOT NULL,
    docs        BIGINT NOT NULL,
    bytes       BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    day         TEXT   NOT NULL, -- YYYY-MM-DD of recorded_at, UTC
    PRIMARY KEY (org_id, usage_key)
);

-- Period sums and daily buckets: WHERE org_id = ? AND recorded_at in [from, to).
CREATE INDEX usage_records_org_time ON usage_records (org_id, recorded_at, day, docs, bytes);

CREATE TABLE signing_keys (
    org_id      TEXT   NOT NULL PRIMARY KEY REFERENCES orgs (id),
    key_id      TEXT   NOT NULL,
    public_pem  TEXT   NOT NULL,
    private_pem TEXT   NOT NULL, -- base64 of the (encrypted) private key
    created_at  BIGINT NOT NULL
);

CREATE TABLE mbom_records (
    org_id      TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    scan_id     TEXT   NOT NULL,
    approved_by TEXT   NOT NULL,
    key_id      TEXT   NOT NULL,
    digest      TEXT   NOT NULL,
    object_key  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, scan_id) REFERENCES scans (org_id, id) ON DELETE CASCADE
);

CREATE INDEX mbom_records_org_scan ON mbom_records (org_id, scan_id, created_at);

-- id is allocated per org from orgs.audit_seq; newest first is id DESC.
CREATE TABLE audit_log (
    org_id      TEXT   NOT NULL REFERENCES orgs (id),
    id          BIGINT NOT NULL,
    action      TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    target      TEXT   NOT NULL DEFAULT '',
    details     TEXT   NOT NULL DEFAULT '', -- JSON object, '' when none
    request_id  TEXT   NOT NULL DEFAULT '',
    occurred_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, id)
);

-- +goose Down

DROP TABLE audit_log;
DROP TABLE mbom_records;
DROP TABLE signing_keys;
DROP TABLE usage_records;
DROP TABLE scan_shards;
DROP TABLE scan_files;
DROP TABLE scans;
DROP TABLE api_keys;
DROP TABLE users;
DROP INDEX orgs_single_operator;
DROP TABLE orgs;
