-- Who searched the web for a generation (the search backend's API, or `native` where the provider did) and how
-- many results the backend found: `/generation` reports them as `web_search_engine` and `num_search_results`.

ALTER TABLE generations ADD COLUMN web_search_engine TEXT;
ALTER TABLE generations ADD COLUMN num_search_results INTEGER;
