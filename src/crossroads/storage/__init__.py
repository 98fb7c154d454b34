"""SQLite (embedded default) and PostgreSQL behind one interface, with numbered migrations."""
