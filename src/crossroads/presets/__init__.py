"""Presets: saved request configurations (OpenRouter's `@preset/<slug>`), kept in storage and in memory."""
