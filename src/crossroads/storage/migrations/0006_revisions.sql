-- Revisions: one counter per kind of record every gateway process holds in memory (API keys, presets,
-- guardrails with their key assignments). Each change raises its kind's counter in the same transaction, so
-- a process learns whether another one (another host, the CLI) changed anything by reading this small table,
-- and reads the records themselves only then.

CREATE TABLE revisions (
    name                  TEXT PRIMARY KEY,           -- 'keys', 'presets' or 'guardrails'
    version               BIGINT NOT NULL
);

INSERT INTO revisions (name, version) VALUES ('keys', 0), ('presets', 0), ('guardrails', 0);
