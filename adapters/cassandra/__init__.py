"""Cassandra / AstraDB adapters: settings, session, schema, the serving store and its loaders."""
