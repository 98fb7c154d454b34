-- A key may opt every eligible request into response caching (`api/cache.py`); a request still opts out with
-- `X-OpenRouter-Cache: false`.

ALTER TABLE api_keys ADD COLUMN response_cache BOOLEAN NOT NULL DEFAULT FALSE;
