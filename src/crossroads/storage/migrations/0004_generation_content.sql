-- A generation's prompt and completion (only with content logging on, deleted after its retention), and
-- the feedback submitted on generations.

ALTER TABLE generations ADD COLUMN content TEXT;  -- JSON: {"input": ..., "output": ...}

CREATE TABLE generation_feedback (
    id                    TEXT PRIMARY KEY,           -- a UUID
    generation_id         TEXT NOT NULL,
    key_hash              TEXT,                       -- NULL: submitted with the management key
    category              TEXT NOT NULL,
    comment               TEXT,
    created_at            DOUBLE PRECISION NOT NULL
);

CREATE INDEX generation_feedback_by_generation ON generation_feedback (generation_id);
