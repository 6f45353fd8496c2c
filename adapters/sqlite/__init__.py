"""SQLite adapters: the embedded serving store that needs no server."""
