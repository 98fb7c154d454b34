-- What each generation asked of its model (chat, text_completion, embeddings, rerank): `/generation` reports it
-- as `api_type`. Rows written before this migration have none and read as completions.

ALTER TABLE generations ADD COLUMN operation TEXT;
