-- Guardrails: policies (model and provider lists, a spend limit, data retention, content filters) assigned
-- to API keys. A guardrail's policy fields are one JSON object, read and checked by crossroads/guardrails/.

CREATE TABLE guardrails (
    id                    TEXT PRIMARY KEY,           -- a UUID
    name                  TEXT NOT NULL,
    description           TEXT,
    rules                 TEXT NOT NULL,              -- JSON object: the policy fields, in OpenRouter's names
    created_at            DOUBLE PRECISION NOT NULL,
    updated_at            DOUBLE PRECISION
);

CREATE TABLE guardrail_keys (
    id                    TEXT PRIMARY KEY,           -- a UUID: the assignment's id
    guardrail_id          TEXT NOT NULL,
    key_hash              TEXT NOT NULL,
    assigned_at           DOUBLE PRECISION NOT NULL,
    UNIQUE (guardrail_id, key_hash)
);
