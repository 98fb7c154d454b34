"""Rate limits per key: an in-process limiter, and a Redis-backed one shared by several gateway processes."""
