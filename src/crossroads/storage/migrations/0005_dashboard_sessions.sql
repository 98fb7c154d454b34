-- Dashboard sessions, shared by every gateway process and host on this database: a session opened on one
-- is good on all, and ends on all when it is closed.
-- The token lives only in the browser's cookie: a row holds its SHA-256, and the credential the session was
-- opened with sealed with a keystream derived from the token (so a copy of this table opens nothing).
-- BYTEA is PostgreSQL's binary type; SQLite keeps the bytes as a blob under any type name.

CREATE TABLE dashboard_sessions (
    token_hash            TEXT PRIMARY KEY,           -- SHA-256 hex of the cookie's token
    principal             TEXT NOT NULL,              -- 'admin', or the hash of the API key it was opened with
    sealed                BYTEA NOT NULL,             -- the credential, sealed with the token
    created_at            DOUBLE PRECISION NOT NULL,
    expires_at            DOUBLE PRECISION NOT NULL,  -- fixed at sign-in; expired rows are purged lazily
    playground            BYTEA,                      -- an admin session's playground key, sealed likewise
    playground_hash       TEXT                        -- that key's hash, deleted with the session
);

CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
