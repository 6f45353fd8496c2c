"""The parquet lake on a local (or mounted) filesystem."""
