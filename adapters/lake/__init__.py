"""The parquet lake on a local (or mounted) filesystem, its schemas derived from the tables."""
