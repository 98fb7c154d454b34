"""Pick and open the storage backend named by `CROSSROADS_DATABASE_URL`."""

from __future__ import annotations

from crossroads.storage.base import Store


async def open_store(url: str) -> Store:
    store: Store
    if url.startswith("sqlite:///"):
        from crossroads.storage.sqlite import SQLiteStore, path_from_url

        store = SQLiteStore(path_from_url(url))
    else:
        from crossroads.storage.postgres import PostgresStore

        store = PostgresStore(url.replace("postgres://", "postgresql://", 1))
    await store.open()
    return store
