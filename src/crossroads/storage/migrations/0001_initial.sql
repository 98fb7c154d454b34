-- Keys, generations (the ledger) and credit grants.
-- Portable SQL: the same file runs on SQLite and PostgreSQL.
-- Money is stored in integer nanodollars (1e-9 USD): exact sums on both backends.
-- Times are unix seconds (UTC) as double precision.

CREATE TABLE api_keys (
    hash                  TEXT PRIMARY KEY,           -- SHA-256 hex of the secret; the secret is never stored
    name                  TEXT NOT NULL,
    label                 TEXT NOT NULL,              -- masked form shown to people, e.g. sk-cr-v1-1a2...f9e
    disabled              BOOLEAN NOT NULL DEFAULT FALSE,
    limit_nanos           BIGINT,                     -- NULL: unlimited
    limit_reset           TEXT,                       -- NULL, 'daily', 'weekly' or 'monthly'
    include_byok_in_limit BOOLEAN NOT NULL DEFAULT FALSE,
    rate_limit_requests   INTEGER,                    -- NULL: no per-key request limit
    rate_limit_interval   INTEGER,                    -- seconds
    tokens_per_minute     INTEGER,
    is_management         BOOLEAN NOT NULL DEFAULT FALSE,
    creator_user_id       TEXT,
    created_at            DOUBLE PRECISION NOT NULL,
    updated_at            DOUBLE PRECISION,
    expires_at            DOUBLE PRECISION
);

CREATE TABLE generations (
    id                    TEXT PRIMARY KEY,           -- gen-...; a retried write of the same id is a no-op
    key_hash              TEXT NOT NULL,
    created_at            DOUBLE PRECISION NOT NULL,
    model                 TEXT NOT NULL,
    provider_name         TEXT,
    endpoint              TEXT,
    upstream_id           TEXT,
    streamed              BOOLEAN NOT NULL,
    cancelled             BOOLEAN NOT NULL DEFAULT FALSE,
    status                INTEGER NOT NULL,           -- 200, or the error code the client saw
    finish_reason         TEXT,
    native_finish_reason  TEXT,
    latency_ms            INTEGER,
    generation_time_ms    INTEGER,
    tokens_prompt         INTEGER NOT NULL DEFAULT 0,
    tokens_completion     INTEGER NOT NULL DEFAULT 0,
    tokens_reasoning      INTEGER,
    tokens_cached         INTEGER,
    tokens_cache_write    INTEGER,
    num_media_prompt      INTEGER NOT NULL DEFAULT 0,
    usage_estimated       BOOLEAN NOT NULL DEFAULT FALSE,
    cost_nanos            BIGINT NOT NULL DEFAULT 0,
    http_referer          TEXT,
    app_title             TEXT,
    user_agent            TEXT,
    external_user         TEXT,
    session_id            TEXT,
    error_message         TEXT,
    trace                 TEXT                        -- JSON: the routing trace
);

CREATE INDEX generations_by_key_time ON generations (key_hash, created_at);
CREATE INDEX generations_by_time ON generations (created_at);

CREATE TABLE credit_grants (
    id                    TEXT PRIMARY KEY,
    amount_nanos          BIGINT NOT NULL,
    note                  TEXT,
    created_at            DOUBLE PRECISION NOT NULL
);
