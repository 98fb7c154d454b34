-- Presets: saved request configurations, used as `"model": "@preset/<slug>"` or `"preset": "<slug>"`.
-- Every change is a new row in preset_versions; presets.designated_version_id names the one in use.

CREATE TABLE presets (
    id                    TEXT PRIMARY KEY,           -- a UUID
    slug                  TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    description           TEXT,
    status                TEXT NOT NULL DEFAULT 'active',  -- 'active', 'disabled' or 'archived'
    designated_version_id TEXT,
    created_at            DOUBLE PRECISION NOT NULL,
    updated_at            DOUBLE PRECISION NOT NULL
);

CREATE TABLE preset_versions (
    id                    TEXT PRIMARY KEY,           -- a UUID
    preset_id             TEXT NOT NULL REFERENCES presets (id) ON DELETE CASCADE,
    version               INTEGER NOT NULL,           -- 1, 2, ... per preset
    system_prompt         TEXT,
    config                TEXT NOT NULL,              -- JSON object: the request fields the preset sets
    created_at            DOUBLE PRECISION NOT NULL,
    UNIQUE (preset_id, version)
);
