"""Crossroads benchmark suite.

Runs every target (the mock upstream itself, a minimal aiohttp proxy, Crossroads on SQLite, Crossroads on
PostgreSQL + Redis, and LiteLLM's proxy) through the same scenarios against an nginx mock upstream, with the
system under test pinned to CPU 0 and the mock and load generators pinned to CPU 1. See docs/benchmarks.md.
"""

__all__: list[str] = []
