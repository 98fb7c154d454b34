"""The HTTP surface: parse → call → render. No provider names live here."""
