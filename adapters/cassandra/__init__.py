"""Cassandra / AstraDB adapters: settings, session, the derived schema, the serving store and
its partition sink."""
